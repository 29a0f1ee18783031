"""Query strategies: which images to pick, and which superpixels to ask for in each.

Region selection works on one image's superpixel scores, where NaN marks a superpixel
with nothing left to label. Image selection works on image scores.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

STRATEGIES = ("dynamic", "static", "random_superpixels", "random_images", "full")
DEFAULT_STATIC_FRACTION = 0.275  # the paper's code


def jenks_two_class_threshold(values: NDArray[np.floating]) -> float:
    """Lower bound of the high class of the exact 2-class Jenks natural breaks.

    Minimises the within-group sum of squares over every split of the sorted values
    (= 1-D k-means with k=2, exact). Splits only between distinct values, so equal
    scores always land in the same group; the first optimal split wins a tie.
    With fewer than two distinct values there is one group, and its minimum is returned.
    """
    if values.ndim != 1:
        raise ValueError(f"values must be 1-D, got shape {values.shape}")
    if values.size == 0:
        raise ValueError("values must not be empty")
    if not np.isfinite(values).all():
        raise ValueError("values must be finite")
    ordered = np.sort(values.astype(np.float64))
    n = ordered.size
    # Centred before the prefix sums: sum(x^2) - sum(x)^2/n cancels catastrophically when
    # the scores are close together around a large offset (1000 + 1e-6 steps picked
    # sub-optimal splits). The within-group sums of squares do not change with a shift.
    centred = ordered - ordered.mean()
    prefix = np.concatenate([[0.0], np.cumsum(centred)])
    prefix_sq = np.concatenate([[0.0], np.cumsum(centred**2)])
    splits = np.arange(1, n)  # low group = ordered[:k], high group = ordered[k:]
    splits = splits[ordered[splits - 1] < ordered[splits]]
    if splits.size == 0:
        return float(ordered[0])
    low_sum, low_sq = prefix[splits], prefix_sq[splits]
    high_sum, high_sq = prefix[-1] - low_sum, prefix_sq[-1] - low_sq
    within = (low_sq - low_sum**2 / splits) + (high_sq - high_sum**2 / (n - splits))
    best = splits[int(np.argmin(within))]
    return float(ordered[best])


def within_group_sum_of_squares(values: NDArray[np.floating], high: NDArray[np.bool_]) -> float:
    """Sum over the two groups of squared deviations from the group mean."""
    total = 0.0
    for group in (values[high], values[~high]):
        if group.size:
            total += float(((group - group.mean()) ** 2).sum())
    return total


def _candidates(scores: NDArray[np.floating]) -> NDArray[np.int64]:
    if scores.ndim != 1:
        raise ValueError(f"superpixel scores must be 1-D, got shape {scores.shape}")
    return np.flatnonzero(~np.isnan(scores)).astype(np.int64)


def dynamic_query(scores: NDArray[np.floating]) -> NDArray[np.int64]:
    """Ids of the high group of the 2-class Jenks split of this image's candidates.

    scores: (N,) superpixel scores, NaN = nothing left to label. Sorted by id.
    When every candidate has the same score there is no high group: nothing is asked
    (empty), so the image is passed over and the round takes the next one. Asking such an
    image in full would spend the most pixels where the model says the least.
    """
    candidates = _candidates(scores)
    if candidates.size == 0:
        return candidates
    values = scores[candidates]
    if values.min() == values.max():
        return candidates[:0]
    threshold = jenks_two_class_threshold(values)
    return candidates[values >= threshold]


def static_query(scores: NDArray[np.floating], fraction: float) -> NDArray[np.int64]:
    """The ceil(fraction * N) highest-scoring candidates (N = candidates). Sorted by id."""
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"static fraction must be in (0, 1], got {fraction}")
    candidates = _candidates(scores)
    count = math.ceil(fraction * candidates.size)
    # A stable sort on the negated scores keeps ties in id order.
    order = np.argsort(-scores[candidates], kind="stable")[:count]
    return np.sort(candidates[order])


def pixel_matched_query(
    scores: NDArray[np.floating], unlabeled_counts: NDArray[np.integer], target_pixels: float
) -> NDArray[np.int64]:
    """The highest-scoring candidates whose unlabeled pixels add up closest to
    ``target_pixels`` (at least one when the target is positive). Sorted by id.

    scores, unlabeled_counts: (N,). Candidates are taken in score order (ties by id) and
    the prefix whose pixel sum is nearest the target wins, so the spend is within half of
    one superpixel of the target unless the image has fewer open pixels than that.
    """
    if unlabeled_counts.shape != scores.shape:
        raise ValueError(
            f"unlabeled_counts shape {unlabeled_counts.shape} != scores shape {scores.shape}"
        )
    candidates = _candidates(scores)
    if target_pixels <= 0 or candidates.size == 0:
        return candidates[:0]
    order = candidates[np.argsort(-scores[candidates], kind="stable")]
    spent = np.concatenate([[0], np.cumsum(unlabeled_counts[order])])
    count = max(1, int(np.argmin(np.abs(spent - target_pixels))))
    return np.sort(order[:count])


def even_pixel_shares(total: float, capacities: Sequence[int]) -> list[float]:
    """``total`` split as evenly as the capacities allow (water filling): an image that
    holds less than its even share gives all it has, the rest share what is left."""
    shares = [0.0] * len(capacities)
    remaining = float(total)
    order = sorted(range(len(capacities)), key=lambda i: capacities[i])
    for done, index in enumerate(order):
        shares[index] = min(float(capacities[index]), remaining / (len(capacities) - done))
        remaining -= shares[index]
    return shares


def random_superpixel_query(
    scores: NDArray[np.floating], fraction: float, rng: np.random.Generator
) -> NDArray[np.int64]:
    """ceil(fraction * N) candidates drawn uniformly without replacement. Sorted by id."""
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    candidates = _candidates(scores)
    count = math.ceil(fraction * candidates.size)
    return np.sort(rng.choice(candidates, size=count, replace=False))


def query_superpixels(
    strategy: str,
    scores: NDArray[np.floating],
    rng: np.random.Generator,
    static_fraction: float = DEFAULT_STATIC_FRACTION,
) -> NDArray[np.int64]:
    """Superpixel ids to ask for in one picked image, per strategy."""
    if strategy == "dynamic":
        return dynamic_query(scores)
    if strategy == "static":
        return static_query(scores, static_fraction)
    if strategy == "random_superpixels":
        return random_superpixel_query(scores, static_fraction, rng)
    if strategy in ("random_images", "full"):
        return _candidates(scores)
    raise ValueError(f"unknown strategy {strategy!r}; known: {STRATEGIES}")


def select_images(
    image_scores: NDArray[np.floating],
    count: int,
    rng: np.random.Generator,
    at_random: bool = False,
) -> NDArray[np.int64]:
    """Indices of up to ``count`` images, highest score first (NaN = not selectable).

    ``at_random`` draws uniformly among the selectable images instead.
    """
    if count < 0:
        raise ValueError(f"count must be >= 0, got {count}")
    selectable = _candidates(image_scores)
    if at_random:
        return rng.permutation(selectable)[:count]
    order = np.argsort(-image_scores[selectable], kind="stable")
    return selectable[order][:count]


@dataclass(frozen=True)
class ImageQuery:
    image_index: int
    superpixel_ids: NDArray[np.int64]
    scores: NDArray[np.float64]
    pixel_count: int


def plan_round(
    strategy: str,
    image_scores: NDArray[np.floating],
    superpixel_scores: Sequence[NDArray[np.floating]],
    unlabeled_counts: Sequence[NDArray[np.integer]],
    images_per_round: int,
    rng: np.random.Generator,
    static_fraction: float = DEFAULT_STATIC_FRACTION,
    pixel_budget: int | None = None,
    matched_pixels: int | None = None,
) -> list[ImageQuery]:
    """One round's queries: images in score order (random for ``random_images``), each
    with its superpixels per strategy, until ``images_per_round`` images are taken.

    ``pixel_budget`` caps the unlabeled pixels asked in the round: an image whose query
    does not fit in what is left is skipped and the next one is tried. ``matched_pixels``
    (``static`` only) replaces the static share by a pixel target: the round's top
    ``images_per_round`` images share it evenly (an image with fewer open pixels than its
    share gives all it has and the others make up the rest, ``even_pixel_shares``), and
    each takes its top-scored superpixels until its running share is reached
    (``pixel_matched_query``), so the round spends the target within about one superpixel.
    ``full`` takes every selectable image.
    Image i has superpixel_scores[i]: (N_i,) and unlabeled_counts[i]: (N_i,)
    not-yet-labeled pixels per superpixel.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; known: {STRATEGIES}")
    if not len(image_scores) == len(superpixel_scores) == len(unlabeled_counts):
        raise ValueError("image_scores, superpixel_scores and unlabeled_counts differ in length")
    if matched_pixels is not None and strategy != "static":
        raise ValueError(f"matched_pixels applies to static only, not {strategy!r}")
    if pixel_budget is not None and pixel_budget < 0:
        raise ValueError(f"pixel_budget must be >= 0, got {pixel_budget}")
    limit = len(image_scores) if strategy == "full" else images_per_round
    ranked = select_images(
        image_scores, len(image_scores), rng, at_random=strategy == "random_images"
    )
    shares: dict[int, float] = {}
    if matched_pixels is not None:
        openable = [int(i) for i in ranked if not np.isnan(superpixel_scores[i]).all()][
            :images_per_round
        ]
        capacities = [
            int(unlabeled_counts[i][~np.isnan(superpixel_scores[i])].sum()) for i in openable
        ]
        shares = dict(zip(openable, even_pixel_shares(matched_pixels, capacities), strict=True))
    queries: list[ImageQuery] = []
    spent = 0
    planned = 0.0
    for index in ranked:
        if len(queries) >= limit:
            break
        if matched_pixels is not None:
            if int(index) not in shares:
                continue
            planned += shares[int(index)]
            ids = pixel_matched_query(
                superpixel_scores[index], unlabeled_counts[index], planned - spent
            )
        else:
            ids = query_superpixels(strategy, superpixel_scores[index], rng, static_fraction)
        if ids.size == 0:
            continue
        pixels = int(unlabeled_counts[index][ids].sum())
        if pixel_budget is not None and spent + pixels > pixel_budget:
            continue
        spent += pixels
        queries.append(
            ImageQuery(
                image_index=int(index),
                superpixel_ids=ids,
                scores=superpixel_scores[index][ids].astype(np.float64),
                pixel_count=pixels,
            )
        )
    return queries
