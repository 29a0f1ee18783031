"""CPU cost of one full-supervision training step (decoder + head from cached features) for
camvid_full_supervision's variants, measured side by side: the variants take turns in
blocks of --steps steps for --rounds rounds, so a busy machine slows them alike; prints the
median seconds per step and the ratio to the first variant.

A variant is INPUT_SCALE:DECODER_CHANNELS (e.g. 2:64). Features come from --cache (built
there on first use, the train split only).
Usage: .venv/bin/python bench/camvid_decoder_cost.py [DATASET_DIR] --variant 1:64
    --variant 2:64 [--variant 1+2:128] [--rounds 5] [--steps 20] [--cache runs/camvid_features]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository

from bench.camvid_finetune import load_avg
from bench.camvid_full_supervision import build_segmenter, training_step
from worker.simulation.dataset import read_classes, read_split
from worker.simulation.feature_store import cached_encode


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("data", nargs="?", default="../shared/datasets/camvid", type=Path)
    parser.add_argument("--variant", action="append", required=True, help="SCALE:CHANNELS")
    parser.add_argument("--encoder", default="efficientnet_lite0")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--cache", type=Path, default=Path("runs/camvid_features"))
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    classes = read_classes(args.data)
    split = read_split(args.data, "train", classes, 0.5)
    masks = [np.where(m == classes.ignore_index, 255, m).astype(np.uint8) for m in split.masks]
    runs = []
    for variant in args.variant:
        scale, channels = variant.split(":")
        torch.manual_seed(0)
        model = build_segmenter(len(classes.classes), args.encoder, int(channels), scale)
        store = None if args.cache is None else args.cache / "lite"
        features, _ = cached_encode(split.images, model, torch.device("cpu"), store)
        optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], 5e-3)
        model.train()
        runs.append((variant, model, optimizer, features, np.random.default_rng(0)))
    seconds: dict[str, list[float]] = {variant: [] for variant in args.variant}
    for _ in range(args.rounds):
        for variant, model, optimizer, features, rng in runs:
            started = time.perf_counter()
            for _ in range(args.steps):
                training_step(model, optimizer, features, masks, None, rng)
            seconds[variant].append((time.perf_counter() - started) / args.steps)
    baseline = float(np.median(seconds[args.variant[0]]))
    load = load_avg()
    for variant, times in seconds.items():
        median = float(np.median(times))
        print(
            f"{variant}: {median:.3f} s/step (median of {args.rounds} blocks of {args.steps}), "
            f"{median / baseline:.2f}x {args.variant[0]}",
            flush=True,
        )
    print(f"load {load}")


if __name__ == "__main__":
    main()
