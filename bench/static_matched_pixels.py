"""How closely static_matched spends dynamic's pixels, old rule against new, on CamVid.

Per round, dynamic's Jenks rule picks superpixels on each of the round's images; static is
then asked to match it. The old rule (before issue 11) matched a superpixel-count share: k =
dynamic's pixel share of the picked images, then ceil(k * N) top superpixels per image. The new
rule (``plan_round(matched_pixels=...)``) takes top superpixels until an even share of
dynamic's pixels is reached. Scores are a smooth random uncertainty field (Gaussian-filtered
noise, mean per superpixel), so no model is trained; the numbers isolate the matching itself.
Two cases: static on dynamic's own images (round 1 of a run, same model), and static on
other images with 0-60% of their superpixels already labeled (later rounds: each strategy's
model picks its own images, some asked before).

    .venv/bin/python bench/static_matched_pixels.py [--images 40] [--per-round 10]

Prints, per round, static's pixels / dynamic's pixels for both rules, and the spread.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image
from scipy.ndimage import gaussian_filter

from worker.engine.reductions import superpixel_scores
from worker.engine.strategies import dynamic_query, plan_round, static_query
from worker.engine.superpixels import compute_superpixels

CAMVID = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "camvid"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=40)
    parser.add_argument("--per-round", type=int, default=10)
    parser.add_argument("--superpixel-size", type=int, default=16)
    parser.add_argument("--scale", type=float, default=0.5)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    paths = sorted((CAMVID / "train" / "images").iterdir())[: args.images]
    sp_scores, counts = [], []
    for path in paths:
        with Image.open(path) as opened:
            image = opened.convert("RGB")
            size = (round(image.width * args.scale), round(image.height * args.scale))
            pixels = np.asarray(image.resize(size, Image.Resampling.BILINEAR))
        ids = compute_superpixels(pixels, args.superpixel_size, "slic")
        field = gaussian_filter(rng.normal(size=ids.shape), sigma=12)
        field = (field - field.min()) / (field.max() - field.min())
        sp_scores.append(superpixel_scores(field**2, ids))
        counts.append(np.bincount(ids.ravel()).astype(np.int64))
    # The "later round" copies: a random 0-60% of each image's superpixels already labeled.
    partly_scores, partly_counts = [], []
    for scores, count in zip(sp_scores, counts, strict=True):
        labeled = rng.uniform(size=scores.size) < rng.uniform(0.0, 0.6)
        partly_scores.append(np.where(labeled, np.nan, scores))
        partly_counts.append(np.where(labeled, 0, count))
    for case, static_scores, static_counts in (
        ("same images", sp_scores, counts),
        ("other, partly labeled images", partly_scores, partly_counts),
    ):
        print(f"static on {case}:")
        measure(args.per_round, len(paths), sp_scores, counts, static_scores, static_counts)


def measure(
    per_round: int,
    images: int,
    sp_scores: list[np.ndarray],
    counts: list[np.ndarray],
    static_scores: list[np.ndarray],
    static_counts: list[np.ndarray],
) -> None:
    old_ratios, new_ratios = [], []
    for start in range(0, images - per_round + 1, per_round):
        chosen = list(range(start, start + per_round))
        image_scores = np.full(images, np.nan)
        image_scores[chosen] = 1.0 - np.arange(len(chosen)) / len(chosen)
        dynamic = plan_round(
            "dynamic", image_scores, sp_scores, counts, len(chosen), np.random.default_rng(0)
        )
        dynamic_pixels = sum(q.pixel_count for q in dynamic)
        fraction = dynamic_pixels / sum(int(counts[q.image_index].sum()) for q in dynamic)
        old_pixels = sum(
            int(static_counts[i][static_query(static_scores[i], fraction)].sum())
            for i in (q.image_index for q in dynamic)
        )
        new = plan_round(
            "static", image_scores, static_scores, static_counts, len(dynamic),
            np.random.default_rng(0), matched_pixels=dynamic_pixels,
        )  # fmt: skip
        new_pixels = sum(q.pixel_count for q in new)
        per_image = [len(dynamic_query(sp_scores[i])) / len(sp_scores[i]) for i in chosen]
        old_ratios.append(old_pixels / dynamic_pixels)
        new_ratios.append(new_pixels / dynamic_pixels)
        print(
            f"  round of images {start}-{start + len(chosen) - 1}: dynamic {dynamic_pixels} px "
            f"({100 * fraction:.1f}% of the picked images, {100 * np.mean(per_image):.0f}% of "
            f"their superpixels); old static_matched {old_pixels} px "
            f"(x{old_ratios[-1]:.3f}), new {new_pixels} px (x{new_ratios[-1]:.4f})"
        )
    for name, ratios in (("old (superpixel share)", old_ratios), ("new (pixels)", new_ratios)):
        print(
            f"  {name}: static_matched / dynamic pixels per round {min(ratios):.3f}-"
            f"{max(ratios):.3f}, mean |1 - ratio| {np.mean(np.abs(1 - np.array(ratios))):.4f}"
        )


if __name__ == "__main__":
    main()
