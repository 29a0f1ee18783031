"""Seconds per step of a service round, measured end to end through a real worker.

Uploads CamVid images (resized) or generated scenes to a fresh SQLite project, starts
``tessera worker`` on the embedded broker, then times: ingest, round 1 (random initial),
the oracle's answers, and round 2's training, scoring and querying (from the round's status
changes, polled every 0.1 s). Prints one table row per step.

    .venv/bin/python bench/worker_round_timings.py --camvid ../shared/datasets/camvid \
        --pool 100 --validation 20 --scale 0.5
    .venv/bin/python bench/worker_round_timings.py --scenes   # the tests' project

The worker's hyper-parameters come from the environment (TESSERA_MODEL_WIDTH, ...).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
from PIL import Image

# A sibling module: ``python bench/worker_round_timings.py`` puts bench/ first on the path.
from round_service import BenchService, Scene

from worker.simulation.synthetic import CLASSES, generate_scene


def camvid(root: Path, split: str, count: int, scale: float) -> tuple[list[Scene], list[str]]:
    meta = json.loads((root / "classes.json").read_text())
    names = [c["name"] for c in meta["classes"]]
    scenes: list[Scene] = []
    for path in sorted((root / split / "images").glob("*.jpg"))[:count]:
        image = Image.open(path).convert("RGB")
        mask = Image.open(root / split / "masks" / f"{path.stem}.png")
        size = (round(image.width * scale), round(image.height * scale))
        pixels = np.asarray(image.resize(size, Image.Resampling.BILINEAR))
        labels = np.asarray(mask.resize(size, Image.Resampling.NEAREST)).copy()
        labels[labels == meta["ignore_index"]] = 255
        scenes.append((f"{split}-{path.stem}.png", pixels, labels))
    return scenes, names


def generated(split: str, count: int, rng: np.random.Generator) -> list[Scene]:
    return [(f"{split}{i}.png", *generate_scene(48, 64, rng)) for i in range(count)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--camvid", type=Path)
    parser.add_argument("--scenes", action="store_true")
    parser.add_argument("--pool", type=int, default=10)
    parser.add_argument("--validation", type=int, default=4)
    parser.add_argument("--scale", type=float, default=0.5)
    parser.add_argument("--superpixel-size", type=int, default=8)
    parser.add_argument("--mc-samples", type=int, default=4)
    parser.add_argument("--initial-images", type=int, default=4)
    parser.add_argument("--images-per-round", type=int, default=4)
    args = parser.parse_args()
    if args.camvid:
        pool, names = camvid(args.camvid, "train", args.pool, args.scale)
        validation, _ = camvid(args.camvid, "val", args.validation, args.scale)
    else:
        rng = np.random.default_rng(0)
        pool, validation = generated("pool", args.pool, rng), generated("val", args.validation, rng)
        names = [str(c["name"]) for c in CLASSES]

    colours = [f"#{i * 0x101010 + 0x102030:06x}" for i in range(len(names))]
    rows: list[tuple[str, float]] = []
    with BenchService("tessera-bench-") as service:
        project = service.create_project(
            {
                "name": "bench",
                "classes": [{"name": n, "colour": c} for n, c in zip(names, colours, strict=True)],
                "superpixel_size": args.superpixel_size,
                "mc_samples": args.mc_samples,
                "initial_images": args.initial_images,
                "images_per_round": args.images_per_round,
            }
        )
        clock = time.perf_counter()
        service.upload(project, "pool", pool)
        service.upload(project, "validation", validation)
        rows.append(("upload + ground truth (API)", time.perf_counter() - clock))
        clock = time.perf_counter()
        service.start_worker(os.environ)
        service.wait_for_jobs(project)
        rows.append(("worker start + ingest (superpixels)", time.perf_counter() - clock))
        for number in (1, 2):
            round_id, spent = service.run_round(project)
            rows += [(f"round {number}: {state}", s) for state, s in spent.items()]
            if number == 1:
                rows.append(
                    ("round 1: oracle answers", service.answer_and_close(project, round_id))
                )
        model = service.call("GET", f"/projects/{project}/models", 200)[-1]
        detail = service.call("GET", f"/projects/{project}/rounds/{round_id}", 200)
    shape = pool[0][1].shape
    print(
        f"pool {len(pool)} + validation {len(validation)} images of {shape[1]}x{shape[0]}, "
        f"superpixel size {args.superpixel_size}, T = {args.mc_samples}"
    )
    for name, seconds in rows:
        print(f"{name:40s} {seconds:8.1f} s")
    metrics = model["metrics"]
    print(
        f"model: {metrics['iterations']} iterations, val mIoU "
        f"{metrics.get('miou', float('nan')):.3f}, training {metrics['seconds']} s"
    )
    print("round 2 superpixels per image:", [len(q["superpixel_ids"]) for q in detail["queries"]])


if __name__ == "__main__":
    main()
