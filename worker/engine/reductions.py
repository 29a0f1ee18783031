"""Pixel scores reduced to superpixel and image scores."""

from __future__ import annotations

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
