"""What a larger EfficientNet-Lite costs the feature cache: per CamVid image at half
resolution (240x180), the one-off encoding time and the cached features' size (float16
maps as the cache stores them, and the packed .npz bytes), for each registered encoder.

Usage: .venv/bin/python bench/encoder_sizes.py [DATASET_DIR] [--threads 1] [--images 16]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import torch

from worker.engine.encoders import encoder_names
from worker.engine.features import encode_images, pack_encoded
from worker.engine.model import ModelConfig, PretrainedSegmenter, build_model
from worker.simulation.dataset import read_classes, read_split


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("data", nargs="?", default="../shared/datasets/camvid", type=Path)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--images", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3, help="best of this many passes")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    classes = read_classes(args.data)
    images = read_split(args.data, "val", classes, 0.5).images[: args.images]
    height, width = images[0].shape[:2]
    print(f"{len(images)} CamVid val images {width}x{height}, {args.threads} thread(s)")
    print("encoder             params  encode ms/img  cache KB/img (fp16)  packed KB/img")
    cpu = torch.device("cpu")
    for name in encoder_names():
        model = build_model(ModelConfig(num_classes=len(classes.classes), kind=name))
        assert isinstance(model, PretrainedSegmenter)
        params = sum(p.numel() for p in model.encoder.parameters())
        encode_images(model, images[:8], cpu)  # warm-up
        best = float("inf")
        for _ in range(args.repeats):
            started = time.perf_counter()
            encoded = encode_images(model, images, cpu)
            best = min(best, time.perf_counter() - started)
        raw_kb = sum(e.nbytes for e in encoded) / len(encoded) / 1000
        packed_kb = sum(len(pack_encoded(e)) for e in encoded) / len(encoded) / 1000
        print(
            f"{name:18s} {params / 1e6:5.2f} M  {1000 * best / len(images):13.1f}  "
            f"{raw_kb:19.0f}  {packed_kb:13.0f}"
        )
    print("load average " + " ".join(f"{x:.2f}" for x in os.getloadavg()))


if __name__ == "__main__":
    main()
