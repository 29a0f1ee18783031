"""Simulation outputs: rows as JSONL and CSV, per-image queries, summary tables (per round,
at equal pixel fractions, area under the curve) and the mIoU-vs-pixels plot."""

from __future__ import annotations

import argparse
import csv
import json
import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, FuncFormatter, MaxNLocator, NullLocator
from numpy.typing import NDArray

from worker.simulation.loop import QueryRow, RoundRow

CSV_FIELDS = [
    "strategy",
    "seed",
    "round",
    "labeled_pixel_fraction",
    "superpixels_labeled",
    "images_labeled",
    "val_miou",
    "query_fraction",
    "iterations",
    "stopped_early",
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


QUERY_FIELDS = [f.name for f in fields(QueryRow)]


def write_queries(queries: Sequence[QueryRow], out_dir: Path) -> tuple[Path, Path]:
    """OUT/queries.jsonl and OUT/queries.csv: one row per picked image and round."""
    out_dir.mkdir(parents=True, exist_ok=True)
    jsonl, table = out_dir / "queries.jsonl", out_dir / "queries.csv"
    with jsonl.open("w") as stream:
        for query in queries:
            stream.write(json.dumps(query.as_dict()) + "\n")
    with table.open("w", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=QUERY_FIELDS)
        writer.writeheader()
        for query in queries:
            writer.writerow(query.as_dict())
    return jsonl, table


def read_queries(jsonl: Path) -> list[QueryRow]:
    return [QueryRow(**json.loads(line)) for line in jsonl.read_text().splitlines() if line]


@dataclass(frozen=True)
class SummaryRow:
    strategy: str
    round: int
    seeds: int
    pixel_fraction: float
    miou_mean: float
    miou_std: float
    superpixels_per_image: float | None
    asked_share: float | None = None  # pixels asked / open pixels of the picked images


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
        shares = [r.query_fraction for r in group if r.query_fraction is not None]
        summary.append(
            SummaryRow(
                strategy=strategy,
                round=round_number,
                seeds=len(group),
                pixel_fraction=float(pixels.mean()),
                miou_mean=float(miou.mean()),
                miou_std=float(miou.std(ddof=1)) if len(group) > 1 else 0.0,
                superpixels_per_image=float(np.mean(per_image)) if per_image else None,
                asked_share=float(np.mean(shares)) if shares and round_number > 0 else None,
            )
        )
    return summary


def format_summary(summary: Sequence[SummaryRow], split: str = "validation") -> str:
    """Markdown table. "asked of picked" is the share of the picked images' open PIXELS a
    round asked for; static's --static-fraction is a share of their SUPERPIXELS."""
    lines = [
        f"| strategy | round | seeds | labeled pixels | {split} mIoU (mean ± sd) "
        "| superpixels/image | asked of picked (pixels) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for item in summary:
        per_image = (
            "" if item.superpixels_per_image is None else f"{item.superpixels_per_image:.1f}"
        )
        share = "" if item.asked_share is None else f"{100 * item.asked_share:.1f}%"
        lines.append(
            f"| {item.strategy} | {item.round} | {item.seeds} | {100 * item.pixel_fraction:.2f}% "
            f"| {100 * item.miou_mean:.1f} ± {100 * item.miou_std:.1f} | {per_image} | {share} |"
        )
    return "\n".join(lines)


Curve = tuple[NDArray[np.float64], NDArray[np.float64]]


def seed_curves(rows: Sequence[RoundRow]) -> dict[str, dict[int, Curve]]:
    """strategy -> seed -> (pixel fractions, mIoU) in round order; ``full`` is left out
    (one point, not a curve)."""
    grouped: dict[str, dict[int, list[RoundRow]]] = defaultdict(lambda: defaultdict(list))
    for row in rows:
        if row.strategy != "full":
            grouped[row.strategy][row.seed].append(row)
    curves: dict[str, dict[int, Curve]] = {}
    for strategy, seeds in grouped.items():
        curves[strategy] = {}
        for seed, group in seeds.items():
            ordered = sorted(group, key=lambda r: r.round)
            curves[strategy][seed] = (
                np.array([r.labeled_pixel_fraction for r in ordered], dtype=np.float64),
                np.array([r.val_miou for r in ordered], dtype=np.float64),
            )
    return curves


def common_pixel_range(curves: dict[str, dict[int, Curve]]) -> tuple[float, float] | None:
    """The pixel-fraction range every strategy's curve covers in every seed, or None."""
    spans = [(x.min(), x.max()) for seeds in curves.values() for x, _ in seeds.values()]
    if not spans:
        return None
    low, high = max(s[0] for s in spans), min(s[1] for s in spans)
    return (float(low), float(high)) if low < high else None


def interpolate_miou(curve: Curve, at: Sequence[float]) -> NDArray[np.float64]:
    """mIoU of a piecewise-linear curve at pixel fractions ``at``; NaN outside its range.

    curve: (x (R,), y (R,)) with x non-decreasing (pixels only grow round by round)."""
    x, y = curve
    points = np.asarray(at, dtype=np.float64)
    values = np.interp(points, x, y)
    values[(points < x.min()) | (points > x.max())] = np.nan
    return values


def normalised_area(curve: Curve, low: float, high: float) -> float:
    """Area under the piecewise-linear mIoU-vs-pixels curve over [low, high], divided by
    (high - low): the curve's mean mIoU over that range. NaN when it does not cover it."""
    if not low < high:
        raise ValueError(f"need low < high, got {low}, {high}")
    x, y = curve
    if low < x.min() or high > x.max():
        return float("nan")
    grid = np.unique(np.concatenate([[low, high], x[(x > low) & (x < high)]]))
    values = np.interp(grid, x, y)
    area = float(np.sum((values[1:] + values[:-1]) * np.diff(grid)) / 2.0)
    return area / (high - low)


@dataclass(frozen=True)
class EqualPixelRow:
    """One strategy at one pixel fraction (interpolated per seed, then mean ± sd)."""

    strategy: str
    pixel_fraction: float
    seeds: int
    miou_mean: float
    miou_std: float


def _mean_std(values: Sequence[float]) -> tuple[int, float, float]:
    finite = [v for v in values if not math.isnan(v)]
    if not finite:
        return 0, float("nan"), float("nan")
    std = float(np.std(finite, ddof=1)) if len(finite) > 1 else 0.0
    return len(finite), float(np.mean(finite)), std


def equal_pixel_table(
    rows: Sequence[RoundRow], at: Sequence[float] | None = None, points: int = 5
) -> list[EqualPixelRow]:
    """mIoU of every strategy at the same pixel fractions: ``at``, or ``points`` evenly
    spaced over the range every strategy covers in every seed."""
    curves = seed_curves(rows)
    if at is None:
        span = common_pixel_range(curves)
        if span is None:
            return []
        at = np.linspace(span[0], span[1], points).tolist()
    table = []
    for strategy in sorted(curves):
        per_seed = np.array([interpolate_miou(c, at) for c in curves[strategy].values()])
        for column, fraction in enumerate(at):
            seeds, mean, std = _mean_std(per_seed[:, column].tolist())
            table.append(EqualPixelRow(strategy, float(fraction), seeds, mean, std))
    return table


@dataclass(frozen=True)
class AreaRow:
    strategy: str
    low: float
    high: float
    seeds: int
    area_mean: float  # mean mIoU over [low, high] of the labeled pixel fraction
    area_std: float


def area_table(rows: Sequence[RoundRow]) -> list[AreaRow]:
    """Normalised area under each strategy's mIoU-vs-pixels curve over the common range."""
    curves = seed_curves(rows)
    span = common_pixel_range(curves)
    if span is None:
        return []
    table = []
    for strategy in sorted(curves):
        areas = [normalised_area(c, *span) for c in curves[strategy].values()]
        seeds, mean, std = _mean_std(areas)
        table.append(AreaRow(strategy, span[0], span[1], seeds, mean, std))
    return table


def format_equal_pixels(table: Sequence[EqualPixelRow], areas: Sequence[AreaRow]) -> str:
    """Markdown: strategies as rows, pixel fractions as columns, then the normalised AUC."""
    if not table:
        return "(no pixel range is covered by every strategy and seed: nothing to compare)"
    fractions = sorted({row.pixel_fraction for row in table})
    strategies = sorted({row.strategy for row in table})
    cells = {(row.strategy, row.pixel_fraction): row for row in table}
    by_strategy = {row.strategy: row for row in areas}
    all_seeds = max(row.seeds for row in table)
    span = f"{100 * areas[0].low:.2f}–{100 * areas[0].high:.2f}%" if areas else ""
    header = " | ".join(f"mIoU @ {100 * f:.2f}% px" for f in fractions)
    lines = [
        f"| strategy | {header} | AUC {span} (mean mIoU) |",
        "|---|" + "---:|" * (len(fractions) + 1),
    ]
    for strategy in strategies:
        values = []
        for fraction in fractions:
            cell = cells[(strategy, fraction)]
            partial = f" ({cell.seeds} of {all_seeds} seeds)" if cell.seeds < all_seeds else ""
            values.append(
                "—"
                if cell.seeds == 0
                else f"{100 * cell.miou_mean:.1f} ± {100 * cell.miou_std:.1f}{partial}"
            )
        area = by_strategy.get(strategy)
        values.append(
            "—"
            if area is None or area.seeds == 0
            else f"{100 * area.area_mean:.1f} ± {100 * area.area_std:.1f}"
        )
        lines.append(f"| {strategy} | " + " | ".join(values) + " |")
    return "\n".join(lines)


def write_equal_pixels(
    table: Sequence[EqualPixelRow], areas: Sequence[AreaRow], out_dir: Path
) -> tuple[Path, Path]:
    """OUT/equal_pixels.csv and OUT/auc.csv."""
    paths = out_dir / "equal_pixels.csv", out_dir / "auc.csv"
    for path, items, kind in ((paths[0], table, EqualPixelRow), (paths[1], areas, AreaRow)):
        with path.open("w", newline="") as stream:
            writer = csv.DictWriter(stream, fieldnames=[f.name for f in fields(kind)])
            writer.writeheader()
            for item in items:
                writer.writerow(asdict(item))
    return paths


def _nice_log_ticks(low: float, high: float) -> list[float]:
    """1-2-5 ticks inside [low, high] (positive); geometric ones when fewer than three fit."""
    decades = range(math.floor(math.log10(low)) - 1, math.ceil(math.log10(high)) + 1)
    ticks = [m * 10.0**d for d in decades for m in (1, 2, 5) if low <= m * 10.0**d <= high]
    if len(ticks) >= 3:
        return ticks
    return [float(f"{t:.2g}") for t in np.geomspace(low, high, 4)]


def label_pixel_axis(axes: Axes, values: Sequence[float]) -> None:
    """Scale and tick labels for the x axis of percent values: log when they span more
    than a factor 20, linear otherwise; always labelled, also over a tiny range."""
    low, high = min(values), max(values)
    if high <= low:  # one point: open a window around it
        low, high = (low * 0.8, high * 1.25) if low > 0 else (low - 1.0, high + 1.0)
    percent = FuncFormatter(lambda value, _: f"{value:g}")
    if low > 0 and high / low > 20:
        axes.set_xscale("log")
        axes.set_xlim(low / 1.15, high * 1.15)
        axes.xaxis.set_major_locator(FixedLocator(_nice_log_ticks(low, high)))
        axes.xaxis.set_minor_locator(NullLocator())
    else:
        pad = 0.05 * (high - low)
        axes.set_xlim(low - pad, high + pad)
        axes.xaxis.set_major_locator(MaxNLocator(nbins=6, min_n_ticks=3))
    axes.xaxis.set_major_formatter(percent)


def curves_figure(rows: Sequence[RoundRow], title: str = "", split: str = "validation") -> Figure:
    """mIoU (on ``split``) vs labeled pixel fraction, one line per strategy (mean ± sd over seeds);
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
    xs = [100 * p.pixel_fraction for p in summary if p.strategy != "full"]
    label_pixel_axis(axes, xs or [100.0])
    axes.set_xlabel("labeled pixels (% of pool)")
    axes.set_ylabel(f"{split} mIoU (%)")
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    if title:
        axes.set_title(title, fontsize=9)
    figure.tight_layout()
    return figure


def plot_curves(
    rows: Sequence[RoundRow], path: Path, title: str = "", split: str = "validation"
) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    curves_figure(rows, title, split).savefig(path)
    return path


def report(
    rows: Sequence[RoundRow], out_dir: Path, title: str = "", split: str = "validation"
) -> str:
    """Writes the tables and the plot of a run into ``out_dir``; returns the printed text.
    ``split`` names the images the mIoU was measured on (test when the run had one)."""
    write_rows(rows, out_dir)
    plot_curves(rows, out_dir / "miou_vs_pixels.png", title=title, split=split)
    equal, areas = equal_pixel_table(rows), area_table(rows)
    write_equal_pixels(equal, areas, out_dir)
    return (
        format_summary(summarize(rows), split)
        + "\n\nAt equal labeled pixels (each seed's curve interpolated, mean ± sd):\n"
        + format_equal_pixels(equal, areas)
    )


def read_rows(jsonl: Path) -> list[RoundRow]:
    """Rows written by ``write_rows`` (or appended live by ``tessera simulate``)."""
    return [RoundRow(**json.loads(line)) for line in jsonl.read_text().splitlines() if line]


def merge_runs(parts: Sequence[Path], out_dir: Path) -> None:
    """One run from several ``tessera simulate --out`` folders of the same settings (e.g.
    one seed each, run as parallel processes): rows and queries concatenated, the first
    part's config.json with every part's seeds."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in ("rounds.jsonl", "queries.jsonl"):
        lines = [
            line
            for part in parts
            if (part / name).is_file()
            for line in (part / name).read_text().splitlines()
            if line
        ]
        (out_dir / name).write_text("".join(line + "\n" for line in lines))
    write_queries(read_queries(out_dir / "queries.jsonl"), out_dir)
    configs = [
        json.loads((p / "config.json").read_text()) for p in parts if (p / "config.json").is_file()
    ]
    if configs:
        merged = {**configs[0], "seeds": [seed for c in configs for seed in c.get("seeds", [])]}
        (out_dir / "config.json").write_text(json.dumps(merged, indent=1))


def main(argv: Sequence[str] | None = None) -> None:
    """Re-summarise a finished or interrupted run: python -m worker.simulation.report OUT"""
    parser = argparse.ArgumentParser(prog="python -m worker.simulation.report")
    parser.add_argument("out", type=Path, help="a tessera simulate --out folder")
    parser.add_argument("title", nargs="?", default="", help="plot title")
    parser.add_argument(
        "--at", help="comma-separated labeled-pixel percentages to compare strategies at"
    )
    parser.add_argument(
        "--merge",
        nargs="+",
        type=Path,
        metavar="PART",
        help="first combine these --out folders (same settings, other seeds) into OUT",
    )
    args = parser.parse_args(argv)
    if args.merge:
        merge_runs(args.merge, args.out)
    saved = read_rows(args.out / "rounds.jsonl")
    config = args.out / "config.json"
    test_split = json.loads(config.read_text()).get("test_split") if config.is_file() else None
    text = report(saved, args.out, args.title, split="test" if test_split else "validation")
    if args.at:
        at = [float(v) / 100 for v in args.at.split(",") if v.strip()]
        text += "\n\n" + format_equal_pixels(equal_pixel_table(saved, at), area_table(saved))
    print(text)


if __name__ == "__main__":
    main()
