"""Simulation outputs: rows as JSONL and CSV, a summary table, and the mIoU-vs-pixels plot."""

from __future__ import annotations

import csv
import json
import sys
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from worker.simulation.loop import RoundRow

CSV_FIELDS = [
    "strategy",
    "seed",
    "round",
    "labeled_pixel_fraction",
    "superpixels_labeled",
    "images_labeled",
    "val_miou",
    "query_fraction",
    "seconds",
]


def write_rows(rows: Sequence[RoundRow], out_dir: Path) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    jsonl, table = out_dir / "rounds.jsonl", out_dir / "rounds.csv"
    with jsonl.open("w") as stream:
        for row in rows:
            stream.write(json.dumps(row.as_dict()) + "\n")
    with table.open("w", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=[*CSV_FIELDS, "per_class_iou"])
        writer.writeheader()
        for row in rows:
            values = {name: getattr(row, name) for name in CSV_FIELDS}
            values["per_class_iou"] = json.dumps(row.per_class_iou)
            writer.writerow(values)
    return jsonl, table


@dataclass(frozen=True)
class SummaryRow:
    strategy: str
    round: int
    seeds: int
    pixel_fraction: float
    miou_mean: float
    miou_std: float
    superpixels_per_image: float | None


def summarize(rows: Sequence[RoundRow]) -> list[SummaryRow]:
    """Mean and sample standard deviation over seeds, per strategy and round."""
    groups: dict[tuple[str, int], list[RoundRow]] = defaultdict(list)
    for row in rows:
        groups[(row.strategy, row.round)].append(row)
    summary = []
    for (strategy, round_number), group in groups.items():
        miou = np.array([r.val_miou for r in group])
        pixels = np.array([r.labeled_pixel_fraction for r in group])
        per_image = [n for r in group for n in r.superpixels_per_image]
        summary.append(
            SummaryRow(
                strategy=strategy,
                round=round_number,
                seeds=len(group),
                pixel_fraction=float(pixels.mean()),
                miou_mean=float(miou.mean()),
                miou_std=float(miou.std(ddof=1)) if len(group) > 1 else 0.0,
                superpixels_per_image=float(np.mean(per_image)) if per_image else None,
            )
        )
    return summary


def format_summary(summary: Sequence[SummaryRow]) -> str:
    lines = [
        "| strategy | round | seeds | labeled pixels | val mIoU (mean ± sd) | superpixels/image |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for item in summary:
        per_image = (
            "" if item.superpixels_per_image is None else f"{item.superpixels_per_image:.1f}"
        )
        lines.append(
            f"| {item.strategy} | {item.round} | {item.seeds} | {100 * item.pixel_fraction:.2f}% "
            f"| {100 * item.miou_mean:.1f} ± {100 * item.miou_std:.1f} | {per_image} |"
        )
    return "\n".join(lines)


def plot_curves(rows: Sequence[RoundRow], path: Path, title: str = "") -> Path:
    """Val mIoU vs labeled pixel fraction, one line per strategy (mean ± sd over seeds);
    full supervision as a horizontal line."""
    summary = summarize(rows)
    # The object API (no pyplot) needs no display backend and keeps no global state.
    figure = Figure(figsize=(7, 4.5), dpi=120)
    axes = figure.add_subplot()
    for strategy in sorted({item.strategy for item in summary}):
        points = sorted((p for p in summary if p.strategy == strategy), key=lambda p: p.round)
        x = np.array([100 * p.pixel_fraction for p in points])
        y = np.array([100 * p.miou_mean for p in points])
        spread = np.array([100 * p.miou_std for p in points])
        if strategy == "full":
            axes.axhline(
                y[0], color="black", linestyle="--", label=f"full supervision ({y[0]:.1f})"
            )
            axes.axhspan(y[0] - spread[0], y[0] + spread[0], color="black", alpha=0.08)
            continue
        axes.errorbar(x, y, yerr=spread, marker="o", capsize=3, label=strategy)
    axes.set_xlabel("labeled pixels (% of pool)")
    axes.set_ylabel("validation mIoU (%)")
    axes.set_xscale("symlog", linthresh=1.0)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    if title:
        axes.set_title(title, fontsize=9)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    return path


def read_rows(jsonl: Path) -> list[RoundRow]:
    """Rows written by ``write_rows`` (or appended live by ``tessera simulate``)."""
    return [RoundRow(**json.loads(line)) for line in jsonl.read_text().splitlines() if line]


if __name__ == "__main__":
    # Re-summarise a finished or interrupted run: python -m worker.simulation.report OUT_DIR
    out = Path(sys.argv[1])
    saved = read_rows(out / "rounds.jsonl")
    write_rows(saved, out)
    plot_curves(saved, out / "miou_vs_pixels.png", title=sys.argv[2] if len(sys.argv) > 2 else "")
    print(format_summary(summarize(saved)))
