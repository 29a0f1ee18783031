"""What cached encoder features save: the pretrained model's training step and MC-dropout
scoring from images (the frozen encoder runs every time) against the same from features
computed once, on CamVid images at half resolution (240x180), in one process.

Prints milliseconds per training iteration (batch 8) and per scored image (T = 20), the
ratio image path / cached path, the one-off encoding time per image and the cache size.
Usage: .venv/bin/python bench/pretrained_cached.py [DATASET_DIR] [--threads N]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from worker.engine.features import encode_images
from worker.engine.model import ModelConfig, build_model
from worker.engine.scoring import score_encoded, score_images
from worker.engine.training import TrainConfig, train_on_features, train_on_partial_masks
from worker.simulation.dataset import read_classes, read_split


def _seconds(run: Callable[[], object], repeats: int) -> float:
    run()  # warm-up
    started = time.perf_counter()
    for _ in range(repeats):
        run()
    return (time.perf_counter() - started) / repeats


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("data", nargs="?", default="../shared/datasets/camvid", type=Path)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--images", type=int, default=16)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    classes = read_classes(args.data)
    split = read_split(args.data, "val", classes, 0.5)
    images = split.images[: args.images]
    ignore = classes.ignore_index
    masks = [np.where(m == ignore, 255, m).astype(np.uint8) for m in split.masks[: args.images]]
    cpu = torch.device("cpu")
    torch.manual_seed(0)
    model = build_model(ModelConfig(num_classes=len(classes.classes), kind="efficientnet_lite0"))

    started = time.perf_counter()
    encoded = encode_images(model, images, cpu)
    encode_ms = 1000 * (time.perf_counter() - started) / len(images)
    cache_kb = sum(e.nbytes for e in encoded) / len(encoded) / 1000

    steps = 5
    config = TrainConfig(iterations=steps, batch_size=8, learning_rate=1e-3)
    rng = np.random.default_rng(0)
    train_images = (
        1000
        * _seconds(lambda: train_on_partial_masks(model, images, masks, config, rng, cpu), 1)
        / steps
    )
    train_cached = (
        1000
        * _seconds(lambda: train_on_features(model, encoded, masks, config, rng, cpu), 1)
        / steps
    )

    superpixels = [np.arange(m.size).reshape(m.shape) // 256 for m in masks]
    labeled = [np.zeros(m.shape, bool) for m in masks]

    def score_from(path: str) -> None:
        if path == "images":
            scored = score_images(
                model, images, superpixels, labeled, method="entropy", samples=20, device=cpu
            )
        else:
            scored = score_encoded(
                model, encoded, superpixels, labeled, method="entropy", samples=20, device=cpu
            )
        list(scored)

    score_from_images = 1000 * _seconds(lambda: score_from("images"), 1) / len(images)
    score_from_cache = 1000 * _seconds(lambda: score_from("cache"), 1) / len(images)

    print(
        f"EfficientNet-Lite0 + FPN decoder, 240x180, {args.threads} threads, {len(images)} images"
    )
    print(f"encode once: {encode_ms:.0f} ms/image, cache {cache_kb:.0f} kB/image (float16)")
    print(
        f"training iteration (batch 8): images {train_images:.0f} ms, cached "
        f"{train_cached:.0f} ms, ratio {train_images / train_cached:.1f}x"
    )
    print(
        f"MC scoring (T=20): images {score_from_images:.0f} ms/image, cached "
        f"{score_from_cache:.0f} ms/image, ratio {score_from_images / score_from_cache:.1f}x"
    )


if __name__ == "__main__":
    main()
