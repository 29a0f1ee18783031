"""Seconds per round of the demo project, and how much of each picked image it asks for.

Builds the project ``tessera serve --demo`` makes (its generated scenes, settings and worker
defaults, ``demo/``) in a fresh SQLite database, starts ``tessera worker`` on the
embedded broker, and runs rounds 1..N with the oracle answering each (``exact``). For every
round after the first it prints the seconds spent training, scoring and querying (from the
round's status changes, polled every 0.1 s), the model's iterations and validation mIoU, and
per picked image the superpixels asked of those still open and the share of its pixels
asked. The same is done for each model given (default: the pretrained encoder, then the
U-Net from scratch as the baseline, in the same run), and the ratios printed. With
``--threads-baseline`` the first model runs once more with torch's default thread count
(the demo's worker runs one thread: ``OMP_NUM_THREADS=1``).

    .venv/bin/python bench/demo_round.py [--rounds 3] [--models efficientnet_lite0,unet]
        [--threads-baseline]
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

# A sibling module: ``python bench/demo_round.py`` puts bench/ first on the path.
from round_service import BenchService

from demo.environment import DEMO_WORKER_DEFAULTS
from demo.scenes import demo_scenes, project_body


def group_cpu_seconds(group: int) -> float:
    """User + system CPU seconds of every process in process group ``group`` (the worker and
    its pool processes), from /proc: the work a round needs, whatever else runs here."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == group:  # pgrp; utime, stime, cutime, cstime follow at 11..14
            total += sum(int(value) for value in fields[11:15])
    return total / ticks


@dataclass
class RoundResult:
    number: int
    seconds: dict[str, float]
    cpu_seconds: float
    iterations: int | None
    max_iterations: int | None
    miou: float | None
    superpixel_shares: list[float] = field(default_factory=list)
    pixel_shares: list[float] = field(default_factory=list)

    @property
    def total(self) -> float:
        return sum(self.seconds.values())


def asked_shares(service: BenchService, project: int, query: dict[str, Any]) -> tuple[float, float]:
    """Of a picked image: the share of its still-open superpixels asked, and the share of its
    pixels asked."""
    labels = service.superpixel_map(project, query["image_id"], query["superpixel_map_id"])
    asked = np.isin(labels, query["superpixel_ids"])
    mask = service.client.get(
        f"/api/v1/projects/{project}/images/{query['image_id']}/mask", headers=service.headers
    )
    known = np.asarray(Image.open(io.BytesIO(mask.content))) != 255
    open_ids = np.unique(labels[~known]) if (~known).any() else np.array([])
    return len(query["superpixel_ids"]) / max(len(open_ids), 1), float(asked.mean())


def run_model(model: str, rounds: int, env_base: dict[str, str]) -> tuple[list[RoundResult], str]:
    with BenchService(f"tessera-demo-{model}-") as service:
        project = service.create_project(project_body("demo", "", model))
        scenes = demo_scenes()
        for split, rows in scenes.items():
            service.upload(project, split, rows)
        clock = time.perf_counter()
        worker = service.start_worker(env_base)
        service.wait_for_jobs(project)
        ingest = f"worker start + ingest of {sum(len(r) for r in scenes.values())} images: " + (
            f"{time.perf_counter() - clock:.1f} s"
        )
        results: list[RoundResult] = []
        for number in range(1, rounds + 1):
            cpu_before = group_cpu_seconds(worker.pid)
            round_id, spent = service.run_round(project)
            cpu = group_cpu_seconds(worker.pid) - cpu_before
            detail = service.call("GET", f"/projects/{project}/rounds/{round_id}", 200)
            models = service.call("GET", f"/projects/{project}/models", 200)
            metrics: dict[str, Any] = next(
                (m["metrics"] for m in models if m["round_id"] == round_id), {}
            )
            result = RoundResult(
                number,
                spent,
                cpu,
                metrics.get("iterations"),
                metrics.get("max_iterations"),
                metrics.get("miou"),
            )
            for query in detail["queries"]:
                superpixel_share, pixel_share = asked_shares(service, project, query)
                result.superpixel_shares.append(superpixel_share)
                result.pixel_shares.append(pixel_share)
            results.append(result)
            service.answer_and_close(project, round_id)
    return results, ingest


def print_results(label: str, results: list[RoundResult], ingest: str) -> None:
    print(f"\n== {label}: {ingest}")
    print(
        "round | train s | score s | query s | round s | worker CPU s | iterations | "
        "val mIoU | asked per picked image: superpixels of open ones, pixel share"
    )
    for r in results:
        shares = ", ".join(
            f"{s:.0%}/{p:.0%}" for s, p in zip(r.superpixel_shares, r.pixel_shares, strict=True)
        )
        miou = "" if r.miou is None else f"{r.miou:.3f}"
        its = "" if r.iterations is None else f"{r.iterations}/{r.max_iterations}"
        print(
            f"{r.number:5d} | {r.seconds.get('training', 0):7.1f} | "
            f"{r.seconds.get('scoring', 0):7.1f} | {r.seconds.get('querying', 0):7.1f} | "
            f"{r.total:7.1f} | {r.cpu_seconds:12.1f} | {its:>10} | {miou:>8} | {shares}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--models", default="efficientnet_lite0,unet")
    parser.add_argument(
        "--threads-baseline",
        action="store_true",
        help="also run the first model with torch's default thread count (one per CPU) "
        "instead of the demo's OMP_NUM_THREADS=1, and print the ratio",
    )
    args = parser.parse_args()
    env_base = {k: v for k, v in os.environ.items() if k != "TESSERA_BROKER_URL"}
    for name, value in DEMO_WORKER_DEFAULTS.items():
        env_base.setdefault(name, value)
    env_base["TESSERA_LOG_LEVEL"] = "info"
    print(f"load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    shown = {
        k: v for k, v in env_base.items() if k.startswith("TESSERA_") or k in DEMO_WORKER_DEFAULTS
    }
    print("worker settings:", shown)
    # label -> (model, worker environment)
    variants = {model: (model, env_base) for model in args.models.split(",")}
    if args.threads_baseline:
        first = args.models.split(",")[0]
        threads = str(os.cpu_count() or 1)
        variants[f"{first} with {threads} threads"] = (
            first,
            {**env_base, "OMP_NUM_THREADS": threads},
        )
    totals: dict[str, float] = {}
    cpu_totals: dict[str, float] = {}
    for label, (model, env) in variants.items():
        results, ingest = run_model(model, args.rounds, env)
        print_results(label, results, ingest)
        later = [r for r in results if r.number > 1]
        if later:
            totals[label] = statistics.mean(r.total for r in later)
            pixel = [p for r in later for p in r.pixel_shares]
            cpu = cpu_totals[label] = statistics.mean(r.cpu_seconds for r in later)
            print(
                f"{label}: mean round (train + score + query) {totals[label]:.1f} s wall, "
                f"{cpu:.1f} s of worker CPU time; picked "
                f"images' pixel share asked: mean {statistics.mean(pixel):.0%}, "
                f"max {max(pixel):.0%}; load average now {os.getloadavg()[0]:.1f}"
            )
    if len(totals) >= 2:
        (a, ta), *others = totals.items()
        print()
        for b, tb in others:
            print(
                f"{a} / {b}: round time {ta / tb:.2f} wall (the load may differ between them), "
                f"worker CPU time {cpu_totals[a] / cpu_totals[b]:.2f}"
            )


if __name__ == "__main__":
    main()
