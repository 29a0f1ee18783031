"""Segmentation metrics from a confusion matrix."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray


def confusion_matrix(
    prediction: NDArray[np.integer],
    target: NDArray[np.integer],
    num_classes: int,
    ignore_index: int | None = None,
) -> NDArray[np.int64]:
    """(C, C) counts, rows = true class, columns = predicted; ignored and out-of-range
    target pixels are left out."""
    if prediction.shape != target.shape:
        raise ValueError(f"prediction shape {prediction.shape} != target shape {target.shape}")
    valid = (target >= 0) & (target < num_classes)
    if ignore_index is not None:
        valid &= target != ignore_index
    truth = target[valid].astype(np.int64)
    predicted = prediction[valid].astype(np.int64)
    if predicted.size and (predicted.min() < 0 or predicted.max() >= num_classes):
        raise ValueError(f"prediction has values outside 0..{num_classes - 1}")
    counts = np.bincount(truth * num_classes + predicted, minlength=num_classes**2)
    return counts.reshape(num_classes, num_classes)


def iou_per_class(matrix: NDArray[np.integer]) -> NDArray[np.float64]:
    """(C,) intersection over union; NaN for a class absent from both truth and prediction."""
    true_positive = np.diag(matrix).astype(np.float64)
    union = matrix.sum(axis=0) + matrix.sum(axis=1) - true_positive
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, true_positive / np.maximum(union, 1), np.nan)


def mean_iou(matrix: NDArray[np.integer]) -> float:
    """Mean IoU over classes present in truth or prediction."""
    ious = iou_per_class(matrix)
    return float(np.nanmean(ious)) if np.isfinite(ious).any() else float("nan")
