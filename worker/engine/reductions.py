"""Pixel scores reduced to superpixel and image scores."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray


def _check_same_shape(name: str, array: NDArray[np.generic], shape: tuple[int, ...]) -> None:
    if array.shape != shape:
        raise ValueError(f"{name} shape {array.shape} does not match pixel scores shape {shape}")


def superpixel_scores(
    pixel_scores: NDArray[np.floating],
    superpixels: NDArray[np.integer],
    labeled: NDArray[np.bool_] | None = None,
    n_superpixels: int | None = None,
) -> NDArray[np.float64]:
    """Mean pixel score per superpixel over its not-yet-labeled pixels (DESIGN.md §1.3).

    pixel_scores: (H, W); superpixels: (H, W) ids 0..n-1; labeled: (H, W) bool.
    Returns (n,) float64; a superpixel with no unlabeled pixel scores NaN (nothing to ask).
    """
    _check_same_shape("superpixels", superpixels, pixel_scores.shape)
    ids = superpixels.ravel()
    n = int(ids.max()) + 1 if n_superpixels is None else n_superpixels
    weights = np.ones(ids.shape, dtype=np.float64)
    if labeled is not None:
        _check_same_shape("labeled", labeled, pixel_scores.shape)
        weights[labeled.ravel()] = 0.0
    sums = np.bincount(ids, weights=pixel_scores.ravel() * weights, minlength=n)
    counts = np.bincount(ids, weights=weights, minlength=n)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / np.maximum(counts, 1e-300), np.nan)


def unlabeled_pixel_counts(
    superpixels: NDArray[np.integer], labeled: NDArray[np.bool_], n_superpixels: int
) -> NDArray[np.int64]:
    """(n,) number of not-yet-labeled pixels in each superpixel."""
    ids = superpixels.ravel()[~labeled.ravel()]
    return np.bincount(ids, minlength=n_superpixels).astype(np.int64)


def superpixel_majority_classes(
    predicted: NDArray[np.integer], superpixels: NDArray[np.integer], n_superpixels: int
) -> NDArray[np.uint8]:
    """The class predicted for most pixels of each superpixel (ties: the lowest index).

    predicted: (H, W) class indices 0..254; superpixels: (H, W) ids 0..n-1.
    Returns (n,) uint8; 255 for a superpixel with no pixels.
    """
    if predicted.shape != superpixels.shape:
        raise ValueError(
            f"predicted shape {predicted.shape} does not match superpixels {superpixels.shape}"
        )
    classes = predicted.ravel().astype(np.int64)
    if classes.size and (classes.min() < 0 or classes.max() > 254):
        raise ValueError(f"predicted classes {classes.min()}..{classes.max()} are not in 0..254")
    ids = superpixels.ravel().astype(np.int64)
    width = int(classes.max()) + 1 if classes.size else 1
    votes = np.bincount(ids * width + classes, minlength=n_superpixels * width)
    votes = votes.reshape(n_superpixels, width)
    majority: NDArray[np.uint8] = votes.argmax(axis=1).astype(np.uint8)
    majority[votes.sum(axis=1) == 0] = 255
    return majority


def image_score(
    pixel_scores: NDArray[np.floating],
    labeled: NDArray[np.bool_] | None = None,
    foreground: NDArray[np.bool_] | None = None,
) -> float:
    """Mean pixel score over unlabeled pixels; NaN when every pixel is labeled.

    With ``foreground`` (the paper's agricultural variant): mean over unlabeled pixels
    predicted as foreground, times the foreground fraction of the unlabeled pixels.
    """
    unlabeled = np.ones(pixel_scores.shape, dtype=bool)
    if labeled is not None:
        _check_same_shape("labeled", labeled, pixel_scores.shape)
        unlabeled = ~labeled
    if not unlabeled.any():
        return float("nan")
    if foreground is None:
        return float(pixel_scores[unlabeled].mean())
    _check_same_shape("foreground", foreground, pixel_scores.shape)
    selected = unlabeled & foreground
    if not selected.any():
        return 0.0
    return float(pixel_scores[selected].mean() * selected.sum() / unlabeled.sum())


IMAGE_SCORES = ("mean", "foreground")


def foreground_mask(
    predicted: NDArray[np.integer], background_classes: Sequence[int]
) -> NDArray[np.bool_]:
    """(H, W) True where the predicted class is not one of ``background_classes``."""
    if not background_classes:
        raise ValueError("the foreground image score needs at least one background class")
    if min(background_classes) < 0:
        raise ValueError(f"background classes must be class ids >= 0, got {background_classes}")
    return ~np.isin(predicted, np.asarray(background_classes))


def class_balance_weights(
    labeled_counts: NDArray[np.integer], max_weight: float = 10.0
) -> NDArray[np.float64]:
    """Per-class multipliers for pixel scores: inverse labeled frequency, 1 when balanced.

    labeled_counts: (C,) labeled pixels per class. Weight = 1 / (C * f_c) with add-one
    smoothed frequencies f_c, clipped to ``max_weight`` so a class never labeled yet lifts
    its pixels without drowning every other score. Returns (C,) float64.
    """
    if labeled_counts.ndim != 1 or labeled_counts.size < 2:
        raise ValueError(f"labeled_counts must be (C,) with C >= 2, got {labeled_counts.shape}")
    if (labeled_counts < 0).any():
        raise ValueError("labeled_counts must not be negative")
    if max_weight < 1.0:
        raise ValueError(f"max_weight must be >= 1, got {max_weight}")
    counts = labeled_counts.astype(np.float64)
    frequency = (counts + 1.0) / (counts.sum() + counts.size)
    weights: NDArray[np.float64] = np.minimum(1.0 / (counts.size * frequency), max_weight)
    return weights


def labeled_class_counts(masks: Sequence[NDArray[np.uint8]], num_classes: int) -> NDArray[np.int64]:
    """(C,) labeled pixels per class over partial masks (values >= C are unlabeled/ignored)."""
    counts = np.zeros(num_classes, dtype=np.int64)
    for mask in masks:
        values = mask[mask < num_classes]
        counts += np.bincount(values.ravel(), minlength=num_classes)[:num_classes]
    return counts
