"""Input actions to label the asked superpixels of one image: one click each (the baseline)
against drag-fill, drag-fill + fill-all (Shift+G) and the model's pre-fill (R) + corrections,
computed from the layout.

Run: .venv/bin/python bench/annotator_clicks.py [--data ../shared/datasets/camvid] [--asked 586]
     [--width 2048 --height 1024] [--accuracy 0.7,0.85,0.95]

Each asked superpixel takes its majority true class. Counted actions:
- one-by-one: one click per asked superpixel, plus one class key per class used;
- drag-fill: one drag per connected group of asked superpixels sharing a class (4-adjacent
  pixels join superpixels; a drag can walk a connected group without leaving it), plus the
  class keys;
- fill-all: drag-fill for every class but the one needing the most drags, then one Shift+G.
- pre-fill at accuracy p: one R, then drag-fill over the superpixels the model got wrong (a
  seeded random share 1 - p of the asked ones, each wrong by one class), plus their class
  keys. The model's real errors cluster along class edges, which favours drags: random
  errors are the conservative case.
Images are resized (nearest for the truth) to --width x --height, 2048x1024 by default: the
586-superpixel image of issue 15.
Superpixels that straddle a class edge need brush strokes in every mode alike; they are not
counted. The asked superpixels are a seeded random sample (the model's query clusters them,
which favours drags, so this is the conservative case).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PIL import Image
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from worker.engine.superpixels import slic_superpixels


def majority_classes(labels: NDArray[np.int32], truth: NDArray[np.uint8]) -> NDArray[np.int64]:
    """(S,) the most frequent true class of each superpixel."""
    count = int(labels.max()) + 1
    classes = int(truth.max()) + 1
    votes = np.zeros((count, classes), dtype=np.int64)
    np.add.at(votes, (labels.ravel(), truth.ravel().astype(np.int64)), 1)
    return np.asarray(votes.argmax(axis=1))


def same_class_groups(
    labels: NDArray[np.int32], asked: NDArray[np.int64], majority: NDArray[np.int64]
) -> dict[int, int]:
    """Class -> number of connected groups of asked superpixels of that class."""
    count = int(labels.max()) + 1
    pairs = np.concatenate(
        [
            np.stack([labels[:, :-1].ravel(), labels[:, 1:].ravel()], axis=1),
            np.stack([labels[:-1, :].ravel(), labels[1:, :].ravel()], axis=1),
        ]
    )
    is_asked = np.zeros(count, dtype=bool)
    is_asked[asked] = True
    a, b = pairs[:, 0], pairs[:, 1]
    keep = (a != b) & is_asked[a] & is_asked[b] & (majority[a] == majority[b])
    graph = coo_matrix((np.ones(int(keep.sum())), (a[keep], b[keep])), shape=(count, count))
    _, component = connected_components(graph, directed=False)
    groups: dict[int, set[int]] = {}
    for superpixel in asked:
        groups.setdefault(int(majority[superpixel]), set()).add(int(component[superpixel]))
    return {label: len(members) for label, members in groups.items()}


def prefill_actions(
    labels: NDArray[np.int32],
    asked: NDArray[np.int64],
    majority: NDArray[np.int64],
    accuracy: float,
    rng: np.random.Generator,
) -> int:
    """One R, then drag-fill corrections of the wrongly predicted asked superpixels."""
    wrong = asked[rng.random(asked.size) >= accuracy]
    if wrong.size == 0:
        return 1
    groups = same_class_groups(labels, wrong, majority)
    return 1 + sum(groups.values()) + len(groups)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/datasets/camvid"))
    parser.add_argument("--asked", type=int, default=586)
    parser.add_argument(
        "--size", type=float, default=None, help="SLIC size in px (default: asked = a third)"
    )
    parser.add_argument("--images", type=int, default=5)
    parser.add_argument("--width", type=int, default=2048)
    parser.add_argument("--height", type=int, default=1024)
    parser.add_argument(
        "--accuracy",
        default="0.7,0.85,0.95",
        help="the model's share of asked superpixels predicted right, comma-separated",
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    rng = np.random.default_rng(args.seed)
    accuracies = [float(a) for a in args.accuracy.split(",")]
    images = sorted((args.data / "test" / "images").glob("*.jpg"))[: args.images]
    prefill_heads = " | ".join(f"pre-fill @{a:.0%}" for a in accuracies)
    print(
        f"Images resized to {args.width}x{args.height}; actions = clicks + drags + keys "
        "(one-by-one is the baseline; savings are one-by-one / mode)"
    )
    print(f"| image | superpixels | asked | one-by-one | drag-fill | fill-all | {prefill_heads} |")
    print("|---|---|---|---|---|---|" + "---|" * len(accuracies))
    totals = np.zeros(3 + len(accuracies))
    size_wh = (args.width, args.height)
    for path in images:
        image = np.asarray(
            Image.open(path).convert("RGB").resize(size_wh, Image.Resampling.BILINEAR),
            dtype=np.uint8,
        )
        truth = np.asarray(
            Image.open(args.data / "test" / "masks" / f"{path.stem}.png").resize(
                size_wh, Image.Resampling.NEAREST
            ),
            dtype=np.uint8,
        )
        # By default the image holds three times as many superpixels as are asked.
        size = args.size or float(np.sqrt(image.shape[0] * image.shape[1] / (3 * args.asked)))
        labels = slic_superpixels(image, size)
        count = int(labels.max()) + 1
        asked = rng.choice(count, size=min(args.asked, count), replace=False)
        majority = majority_classes(labels, truth)
        groups = same_class_groups(labels, asked, majority)
        class_keys = len(groups)
        one_by_one = len(asked) + class_keys
        drag = sum(groups.values()) + class_keys
        # Shift+G takes the class that needs the most drags.
        fill_all = drag - max(groups.values()) + 1
        prefill = [prefill_actions(labels, asked, majority, a, rng) for a in accuracies]
        row = [one_by_one, drag, fill_all, *prefill]
        totals += row
        cells = " | ".join(f"{n} ({one_by_one / n:.1f}x)" for n in row[1:])
        print(f"| {path.name} | {count} | {len(asked)} | {one_by_one} | {cells} |")
    cells = " | ".join(f"{n:.0f} ({totals[0] / n:.1f}x)" for n in totals[1:])
    print(f"| all {len(images)} | | | {totals[0]:.0f} | {cells} |")


if __name__ == "__main__":
    main()
