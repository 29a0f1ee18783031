"""Superpixel maps in the compact form the save path needs, cached per process.

A map is kept as the row-major runs of its queried superpixels: run i covers pixels
``starts[i] .. starts[i] + lengths[i] - 1`` (y * W + x) of superpixel ``run_labels[i]``.
A 2048x1024 grid of 2,048 superpixels is ~65,000 runs, of which the ~27 % queried take
~220 KB (12 bytes a run: lengths and labels in 16 bits where they fit), where the decoded
int32 map is 8 MB. From the runs the save path gets a superpixel's pixels (to fill
it) and the queried superpixel under given pixels (to check a brush stroke) without a
full-resolution array per request.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from zlib_ng import zlib_ng

_DTYPES: dict[str, np.dtype[np.uint16] | np.dtype[np.int32]] = {
    "uint16": np.dtype("<u2"),
    "int32": np.dtype("<i4"),
}


def _narrow(values: NDArray[np.integer]) -> NDArray[np.uint16] | NDArray[np.int32]:
    """values: (N,) ints >= 0 as uint16 when they all fit, else int32 (a cached map's
    lengths and labels: a quarter of its bytes)."""
    if values.size == 0 or int(values.max()) <= np.iinfo(np.uint16).max:
        return values.astype(np.uint16)
    return values.astype(np.int32)


# Pieces of a stored map inflated at a time (``SuperpixelRuns.from_zlib``): past 256 KB the
# pieces are mapped and unmapped each (``backend.memory``), far below it numpy's per-call
# cost adds up.
_INFLATE_PIECE = 256 * 1024


def _check_offsets(width: int, height: int) -> None:
    if width * height >= 2**31:
        raise ValueError(f"a {width}x{height} map does not fit int32 pixel offsets")


def _label_runs(
    values: NDArray[np.integer], offset: int, previous: int | None
) -> tuple[NDArray[np.int32], NDArray[np.int32]]:
    """values: (N,) labels of pixels ``offset .. offset + N - 1``, the one before them
    ``previous`` (None: they come first) -> (first pixel, label) of each run starting there."""
    starts = np.flatnonzero(values[1:] != values[:-1]).astype(np.int32) + 1
    if values.size and (previous is None or int(values[0]) != previous):
        starts = np.concatenate((np.zeros(1, np.int32), starts))
    run_labels = values[starts].astype(np.int32)
    return starts + np.int32(offset), run_labels


def expand_ranges(starts: NDArray[np.int64], lengths: NDArray[np.int64]) -> NDArray[np.int64]:
    """The indices ``starts[i] .. starts[i] + lengths[i] - 1`` of every range, concatenated.

    starts, lengths: (R,) int64, lengths >= 0 -> (sum(lengths),) int64.
    """
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    ends = np.cumsum(lengths)
    # Each output position i in range r is starts[r] + (i - first output position of r).
    shift = np.repeat(starts - (ends - lengths), lengths)
    indices: NDArray[np.int64] = np.arange(total, dtype=np.int64) + shift
    return indices


@dataclass(frozen=True)
class SuperpixelRuns:
    """The runs of some superpixels (``kept``; all of them unless chosen) of a map of
    ``width`` x ``height`` with ``count`` superpixels. Run i covers pixels
    ``starts[i] .. starts[i] + lengths[i] - 1`` and lies in superpixel ``run_labels[i]``."""

    width: int
    height: int
    count: int
    starts: NDArray[np.int32]  # (R,) ascending
    lengths: NDArray[np.uint16] | NDArray[np.int32]  # (R,) >= 1
    run_labels: NDArray[np.uint16] | NDArray[np.int32]  # (R,)
    by_label: NDArray[np.int32]  # (R,) run indices ordered by label, then position
    label_offsets: NDArray[np.int32]  # (count + 1,) label l owns by_label[off[l]:off[l + 1]]

    @classmethod
    def from_labels(
        cls, labels: NDArray[np.integer], count: int, kept: NDArray[np.int64] | None = None
    ) -> SuperpixelRuns:
        """labels: (H, W) ints 0..count-1; kept: (K,) the superpixels whose runs to keep
        (the queried ones: a quarter of the map's runs), or None for all."""
        if labels.ndim != 2:
            raise ValueError(f"superpixel labels must be (H, W), got shape {labels.shape}")
        height, width = labels.shape
        _check_offsets(width, height)
        starts, run_labels = _label_runs(labels.reshape(-1), 0, None)
        return cls._from_runs(width, height, count, starts, run_labels, kept)

    @classmethod
    def from_zlib(
        cls,
        blob: bytes,
        dtype_name: str,
        width: int,
        height: int,
        count: int,
        kept: NDArray[np.int64] | None = None,
    ) -> SuperpixelRuns:
        """From the stored encoding (``core.superpixel_codec``), inflated a piece at a time
        and its runs found piece by piece: no map-sized array is made (a 4000x3000 map is
        24 MB of uint16, mapped and faulted in anew for each image; ~2x the time)."""
        _check_offsets(width, height)
        dtype = _DTYPES[dtype_name]
        size = width * height
        inflater = zlib_ng.decompressobj()
        starts: list[NDArray[np.int32]] = []
        run_labels: list[NDArray[np.int32]] = []
        position = 0
        previous: int | None = None
        carry = b""

        def add(piece: bytes) -> None:
            nonlocal position, previous, carry
            piece = carry + piece if carry else piece
            usable = len(piece) - len(piece) % dtype.itemsize
            carry = piece[usable:]
            values: NDArray[np.integer] = np.frombuffer(
                piece, dtype=dtype, count=usable // dtype.itemsize
            )
            if values.size == 0:
                return
            if position + values.size > size:
                raise ValueError(f"superpixel map holds more than {width}x{height} labels")
            piece_starts, piece_labels = _label_runs(values, position, previous)
            starts.append(piece_starts)
            run_labels.append(piece_labels)
            position += values.size
            previous = int(values[-1])

        pending = blob
        while pending and not inflater.eof:
            add(inflater.decompress(pending, _INFLATE_PIECE))
            pending = inflater.unconsumed_tail
        if not inflater.eof:
            add(inflater.flush())
        if not inflater.eof or carry or position != size:
            raise ValueError(f"superpixel map is not {width}x{height} {dtype_name} labels")
        return cls._from_runs(
            width,
            height,
            count,
            np.concatenate(starts) if starts else np.zeros(0, np.int32),
            np.concatenate(run_labels) if run_labels else np.zeros(0, np.int32),
            kept,
        )

    @classmethod
    def _from_runs(
        cls,
        width: int,
        height: int,
        count: int,
        starts: NDArray[np.int32],
        run_labels: NDArray[np.int32],
        kept: NDArray[np.int64] | None,
    ) -> SuperpixelRuns:
        """starts: (R,) ascending first pixel of each run, run_labels: (R,) its superpixel."""
        ends = np.append(starts[1:], np.int32(width * height)).astype(np.int32)
        if run_labels.size and (int(run_labels.min()) < 0 or int(run_labels.max()) >= count):
            raise ValueError(f"superpixel labels must lie in 0..{count - 1}")
        if kept is not None:
            keep = np.zeros(count, dtype=bool)
            keep[kept] = True
            chosen = keep[run_labels]
            starts, ends, run_labels = starts[chosen], ends[chosen], run_labels[chosen]
        by_label = np.argsort(run_labels, kind="stable").astype(np.int32)
        label_offsets = np.searchsorted(
            run_labels[by_label], np.arange(count + 1), side="left"
        ).astype(np.int32)
        return cls(
            width,
            height,
            count,
            starts,
            _narrow(ends - starts),
            _narrow(run_labels),
            by_label,
            label_offsets,
        )

    @property
    def nbytes(self) -> int:
        arrays = (self.starts, self.lengths, self.run_labels, self.by_label, self.label_offsets)
        return sum(a.nbytes for a in arrays)

    def pixels_of(self, ids: NDArray[np.int64]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """ids: (K,) kept superpixel ids -> (their pixels, row-major indices grouped by id in
        the order given; (K,) pixel count of each)."""
        first = self.label_offsets[ids].astype(np.int64)
        run_counts = self.label_offsets[ids + 1] - first
        runs = self.by_label[expand_ranges(first, run_counts)]
        lengths = self.lengths[runs].astype(np.int64)
        pixels = expand_ranges(self.starts[runs].astype(np.int64), lengths)
        # Each id's runs are consecutive in ``runs``: its pixels are a difference of the
        # running total of run lengths (``np.add.at`` per run is ~10x slower).
        total = np.concatenate((np.zeros(1, np.int64), np.cumsum(lengths)))
        last = np.cumsum(run_counts.astype(np.int64))
        per_id: NDArray[np.int64] = total[last] - total[last - run_counts]
        return pixels, per_id

    def labels_at(self, pixels: NDArray[np.int64]) -> NDArray[np.int32]:
        """pixels: (P,) row-major indices in the image -> (P,) their superpixel ids, -1 for a
        pixel in no kept superpixel."""
        if self.starts.size == 0:
            return np.full(pixels.size, -1, dtype=np.int32)
        runs = np.searchsorted(self.starts, pixels, side="right") - 1
        safe = np.maximum(runs, 0)
        inside = (runs >= 0) & (pixels < self.starts[safe] + self.lengths[safe].astype(np.int64))
        labels: NDArray[np.int32] = np.where(inside, self.run_labels[safe].astype(np.int32), -1)
        return labels


class SuperpixelRunCache:
    """A bounded LRU of ``SuperpixelRuns`` by caller-chosen key, safe across threads.

    Holds at most ``max_bytes`` of runs; a map larger than that is built but not kept.
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[Hashable, SuperpixelRuns] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> SuperpixelRuns | None:
        with self._lock:
            runs = self._entries.get(key)
            if runs is not None:
                self._entries.move_to_end(key)
            return runs

    def put(self, key: Hashable, runs: SuperpixelRuns) -> None:
        if runs.nbytes > self.max_bytes:
            return
        with self._lock:
            previous = self._entries.pop(key, None)
            if previous is not None:
                self._bytes -= previous.nbytes
            self._entries[key] = runs
            self._bytes += runs.nbytes
            self._evict_to(self.max_bytes)

    def _evict_to(self, max_bytes: int) -> None:
        while self._bytes > max_bytes:
            _, evicted = self._entries.popitem(last=False)
            self._bytes -= evicted.nbytes

    def shrink(self, max_bytes: int) -> None:
        """Drops the least recently used maps until at most ``max_bytes`` are held (the
        cache's own bound stays ``max_bytes`` as constructed)."""
        with self._lock:
            self._evict_to(max_bytes)

    @property
    def size_bytes(self) -> int:
        with self._lock:
            return self._bytes

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)
