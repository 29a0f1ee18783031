"""The oracle annotator: answers queries from ground truth, as a person would."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from worker.engine.training import UNLABELED

ORACLE_MODES = ("exact", "dominant")


def oracle_label(
    partial_mask: NDArray[np.uint8],
    ground_truth: NDArray[np.uint8],
    superpixels: NDArray[np.integer],
    query_ids: NDArray[np.integer],
    mode: str = "exact",
    ignore_index: int | None = None,
) -> NDArray[np.uint8]:
    """A new partial mask with the queried superpixels answered.

    partial_mask, ground_truth, superpixels: (H, W). ``exact`` copies the true pixels;
    ``dominant`` fills each superpixel with its majority true class (one click). Pixels
    whose truth is ``ignore_index`` (or 255) stay unlabeled either way.
    """
    if not partial_mask.shape == ground_truth.shape == superpixels.shape:
        raise ValueError(
            f"shapes differ: partial mask {partial_mask.shape}, ground truth "
            f"{ground_truth.shape}, superpixels {superpixels.shape}"
        )
    if mode not in ORACLE_MODES:
        raise ValueError(f"unknown oracle mode {mode!r}; known: {ORACLE_MODES}")
    answered = partial_mask.copy()
    queried = np.isin(superpixels, query_ids)
    known = ground_truth != UNLABELED
    if ignore_index is not None:
        known &= ground_truth != ignore_index
    if mode == "exact":
        target = queried & known
        answered[target] = ground_truth[target]
        return answered
    for superpixel in np.unique(query_ids):
        inside = superpixels == superpixel
        truth = ground_truth[inside & known]
        if truth.size == 0:
            continue
        majority = np.bincount(truth).argmax()
        answered[inside & known] = majority
    return answered
