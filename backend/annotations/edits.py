"""Superpixel-native mask edits: whole superpixels filled with a class, and brushed runs.

An edit names what changed since the version it was made on: ``fills`` (superpixel id of
the query's map -> class) and ``runs`` (row-major pixel runs ``offset, length, class``
inside the image, sorted, not overlapping, none inside a filled superpixel); class 255
erases. Checking and applying one touches only the edited pixels: the stored mask rows are
inflated, written at those positions and deflated again (``core.masks.MaskRows``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from backend.annotations.superpixel_runs import SuperpixelRuns, expand_ranges
from core.class_counts import class_delta
from core.masks import UNLABELED, MaskRows


class EditRefused(Exception):
    """The edit breaks a rule; ``message`` names it (answered 422)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class MaskEdit:
    fill_ids: NDArray[np.int64]  # (K,) superpixel ids
    fill_classes: NDArray[np.uint8]  # (K,)
    run_starts: NDArray[np.int64]  # (B,) row-major pixel index of each run's first pixel
    run_lengths: NDArray[np.int64]  # (B,)
    run_classes: NDArray[np.uint8]  # (B,)

    @classmethod
    def from_lists(cls, fills: Sequence[Sequence[int]], runs: Sequence[Sequence[int]]) -> MaskEdit:
        """fills: [(superpixel id, class)], runs: [(offset, length, class)] (schema-checked
        ranges: ids and offsets >= 0, lengths >= 1, classes 0..255)."""
        fill_array = np.asarray(fills, dtype=np.int64).reshape(-1, 2)
        run_array = np.asarray(runs, dtype=np.int64).reshape(-1, 3)
        return cls(
            fill_ids=fill_array[:, 0].copy(),
            fill_classes=fill_array[:, 1].astype(np.uint8),
            run_starts=run_array[:, 0].copy(),
            run_lengths=run_array[:, 1].copy(),
            run_classes=run_array[:, 2].astype(np.uint8),
        )

    @property
    def brushed_pixels(self) -> int:
        return int(self.run_lengths.sum())


@dataclass(frozen=True)
class CheckedEdit:
    """An edit that passed ``check_edit``, with the pixels it writes: the F pixels of the
    fills (grouped by fill, in the edit's order), then the B brushed ones."""

    pixels: NDArray[np.int64]  # (F + B,) row-major
    values: NDArray[np.uint8]  # (F + B,)
    fill_ids: NDArray[np.int64]  # (K,) the filled superpixels
    fill_sizes: NDArray[np.int64]  # (K,) pixels of each (they sum to F)
    brush_labels: NDArray[np.int32]  # (B,) superpixel of each brushed pixel in the edit's map


@dataclass(frozen=True)
class AppliedEdit:
    changed_pixels: int
    newly_labeled: int  # unlabeled before, a class now
    newly_unlabeled: int  # a class before, erased now
    touched_superpixels: list[int]  # superpixels with a changed pixel, ascending
    counts_delta: NDArray[np.int64]  # (256,) how the pixels per class moved


def _first(values: NDArray[np.int64], limit: int = 10) -> list[int]:
    return [int(v) for v in values[:limit]]


def check_edit(
    edit: MaskEdit,
    superpixels: SuperpixelRuns,
    editable: dict[int, SuperpixelRuns],
    queried: dict[int, NDArray[np.int64]],
    edit_map_id: int,
    class_indices: set[int],
) -> CheckedEdit:
    """Checks an edit against the image's open queries; raises EditRefused naming the problem.

    superpixels: the runs of the map the fills refer to (``edit_map_id``); editable: the runs
    of every map an open query of the image uses, by map id; queried: each of those maps'
    queried superpixel ids. A brushed pixel must lie in a queried superpixel of some map.
    """
    width, height = superpixels.width, superpixels.height
    allowed = np.array(sorted(class_indices | {UNLABELED}), dtype=np.int64)
    classes = np.concatenate((edit.fill_classes, edit.run_classes)).astype(np.int64)
    bad_classes = np.unique(classes[~np.isin(classes, allowed)])
    if bad_classes.size:
        raise EditRefused(
            f"classes {_first(bad_classes)} are not class indices of this project "
            f"(allowed: {allowed.tolist()}; 255 erases)."
        )
    ids = edit.fill_ids
    unknown = ids[ids >= superpixels.count]
    if unknown.size:
        raise EditRefused(
            f"fills name superpixels {_first(unknown)} that map {edit_map_id} does not have "
            f"(it has 0..{superpixels.count - 1})."
        )
    if np.unique(ids).size != ids.size:
        raise EditRefused("fills name a superpixel more than once.")
    not_queried = ids[~np.isin(ids, queried[edit_map_id])]
    if not_queried.size:
        raise EditRefused(
            f"fills name superpixels {_first(not_queried)} that are not queried in this image; "
            "only queried superpixels may be labeled."
        )
    ends = edit.run_starts + edit.run_lengths
    if edit.run_starts.size:
        if int(ends.max()) > width * height:
            raise EditRefused(
                f"a run ends past the image's last pixel ({width * height - 1}; runs are "
                "row-major offsets y * width + x)."
            )
        if np.any(edit.run_starts[1:] < ends[:-1]):
            raise EditRefused("runs must be sorted by offset and must not overlap.")
    fill_pixels, per_fill = superpixels.pixels_of(ids)
    brush_pixels = expand_ranges(edit.run_starts, edit.run_lengths)
    brush_labels = superpixels.labels_at(brush_pixels)
    inside = np.zeros(brush_pixels.size, dtype=bool)
    for map_id, runs in editable.items():
        on_map = brush_labels if map_id == edit_map_id else runs.labels_at(brush_pixels)
        inside |= np.isin(on_map, queried[map_id])
    if not inside.all():
        outside = brush_pixels[~inside]
        first = int(outside[0])
        raise EditRefused(
            f"{outside.size} brushed pixels lie outside the queried superpixels (the first at "
            f"x={first % width}, y={first // width}); only queried superpixels may be labeled."
        )
    in_filled = np.isin(brush_labels, ids)
    if in_filled.any():
        raise EditRefused(
            f"runs brush superpixels {_first(np.unique(brush_labels[in_filled]))} that the edit "
            "also fills; send a superpixel either as a fill or as runs."
        )
    return CheckedEdit(
        pixels=np.concatenate((fill_pixels, brush_pixels)),
        values=np.concatenate(
            (np.repeat(edit.fill_classes, per_fill), np.repeat(edit.run_classes, edit.run_lengths))
        ),
        fill_ids=ids,
        fill_sizes=per_fill,
        brush_labels=brush_labels.astype(np.int32),
    )


def apply_edit(rows: MaskRows, edit: CheckedEdit) -> AppliedEdit:
    """Writes the edit into ``rows`` (in place) and says what it changed.

    Per pixel only gathers, one scatter and compares: which superpixels changed is read per
    fill (a 4000x3000 fill-all writes ~1.3 M pixels; ``np.unique`` over their superpixel ids
    cost more than the rest of the write).
    """
    positions = rows.flat_positions(edit.pixels)
    buffer = np.frombuffer(rows.buffer, dtype=np.uint8)
    before = buffer[positions]
    buffer[positions] = edit.values
    changed = before != edit.values
    filled = int(edit.fill_sizes.sum())
    nonempty = edit.fill_sizes > 0
    fill_starts = (np.cumsum(edit.fill_sizes) - edit.fill_sizes)[nonempty]
    fill_changed = np.zeros(edit.fill_ids.size, dtype=bool)
    if filled:
        fill_changed[nonempty] = np.logical_or.reduceat(changed[:filled], fill_starts)
    touched = np.union1d(edit.fill_ids[fill_changed], edit.brush_labels[changed[filled:]])
    return AppliedEdit(
        changed_pixels=int(np.count_nonzero(changed)),
        newly_labeled=int(np.count_nonzero(changed & (before == UNLABELED))),
        newly_unlabeled=int(np.count_nonzero(changed & (edit.values == UNLABELED))),
        touched_superpixels=[int(s) for s in touched],
        counts_delta=class_delta(before, edit.values),
    )
