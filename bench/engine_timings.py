"""Engine timings: SLIC, a training iteration, and MC-dropout scoring (naive vs cheap path).

Run: .venv/bin/python bench/engine_timings.py [--data ../shared/datasets/camvid] [--device auto]
Prints a Markdown table. The naive path (T full forward passes) is the baseline that the
cheap path (trunk once, dropout + head T times) is compared with, in the same run.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from worker.engine.model import ModelConfig, build_model, images_to_tensor, resolve_device
from worker.engine.superpixels import compute_superpixels
from worker.engine.training import TrainConfig, train_on_partial_masks
from worker.engine.uncertainty import pixel_uncertainty
from worker.simulation.synthetic import generate_scene


def median_ms(action: Callable[[], object], repeats: int, sync: Callable[[], None]) -> float:
    action()  # warm-up
    sync()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        action()
        sync()
        times.append(1000 * (time.perf_counter() - started))
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=Path("../shared/datasets/camvid"))
    parser.add_argument("--device", default="auto")
    parser.add_argument("--samples", type=int, default=20, help="T dropout passes")
    args = parser.parse_args()
    device = resolve_device(args.device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    rng = np.random.default_rng(0)
    rows: list[tuple[str, str]] = []

    camvid = sorted((args.data / "train" / "images").glob("*.jpg"))[:5]
    if camvid:
        images = [np.asarray(Image.open(p).convert("RGB")) for p in camvid]
        ms = np.mean([median_ms(lambda i=i: compute_superpixels(i, 32), 3, sync) for i in images])
        rows.append(("SLIC, CamVid 360x480, size 32 px", f"{ms:.0f} ms/image"))
    large, _ = generate_scene(1024, 2048, rng)
    ms = median_ms(lambda: compute_superpixels(large, 32), 3, sync)
    rows.append(("SLIC, generated 2048x1024, size 32 px", f"{ms:.0f} ms/image"))

    model = build_model(ModelConfig(num_classes=11, width=16, depth=4)).to(device)
    scenes = [generate_scene(180, 240, rng) for _ in range(8)]
    train_images = [image for image, _ in scenes]
    train_masks = [mask for _, mask in scenes]
    for crop in (112, None):
        config = TrainConfig(iterations=5, batch_size=8, crop_size=crop)
        ms = median_ms(
            lambda c=config: train_on_partial_masks(model, train_images, train_masks, c, rng),
            3,
            sync,
        )
        label = f"crop {crop}" if crop else "whole 180x240"
        rows.append((f"training iteration, U-Net w16 d4, batch 8, {label}", f"{ms / 5:.0f} ms"))

    batch = images_to_tensor(torch.from_numpy(np.stack(train_images)).to(device))
    naive = median_ms(
        lambda: pixel_uncertainty(model, batch, "entropy", args.samples, cheap=False), 3, sync
    )
    cheap = median_ms(
        lambda: pixel_uncertainty(model, batch, "entropy", args.samples, cheap=True), 3, sync
    )
    per_image = len(train_images)
    rows.append(
        (
            f"scoring T={args.samples}, naive (T full passes), 180x240",
            f"{naive / per_image:.0f} ms/image",
        )
    )
    rows.append(
        (
            f"scoring T={args.samples}, cheap (trunk once), 180x240",
            f"{cheap / per_image:.0f} ms/image",
        )
    )
    rows.append(("cheap path speed-up over naive", f"{naive / cheap:.1f}x"))

    print(f"device: {device}, torch threads: {torch.get_num_threads()}")
    print("| measurement | value |\n|---|---:|")
    for name, value in rows:
        print(f"| {name} | {value} |")


if __name__ == "__main__":
    main()
