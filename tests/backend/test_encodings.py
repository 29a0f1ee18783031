"""Properties of the wire and storage encodings (no database needed)."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from backend.annotations.edits import MaskEdit, apply_edit, check_edit
from backend.annotations.superpixel_runs import SuperpixelRunCache, SuperpixelRuns
from backend.export.service import rle_counts, rle_decode
from backend.images.validation import display_name
from core.class_counts import pixels_per_class
from core.masks import decode_mask_rows, decode_stored_mask, encode_mask_png, stored_rows
from core.superpixel_codec import decode_superpixels, encode_superpixels
from tests.backend.builders import png_bytes

shapes = st.tuples(st.integers(1, 12), st.integers(1, 12))


@given(arrays(np.bool_, shapes))
def test_rle_round_trips(binary: np.ndarray) -> None:
    counts = rle_counts(binary)
    assert sum(counts) == binary.size
    assert all(run > 0 for run in counts[1:])
    np.testing.assert_array_equal(rle_decode(counts, *binary.shape), binary)


@settings(max_examples=50)
@given(arrays(np.int32, shapes, elements=st.integers(0, 70_000)))
def test_superpixel_encoding_round_trips(labels: np.ndarray) -> None:
    dtype, blob, count = encode_superpixels(labels)
    assert count == int(labels.max()) + 1
    assert dtype == ("uint16" if count <= 65_536 else "int32")
    height, width = labels.shape
    np.testing.assert_array_equal(decode_superpixels(blob, dtype, width, height), labels)


@settings(max_examples=50)
@given(arrays(np.uint8, shapes))
def test_mask_png_round_trips(mask: np.ndarray) -> None:
    height, width = mask.shape
    np.testing.assert_array_equal(decode_stored_mask(encode_mask_png(mask), width, height), mask)


@settings(max_examples=30)
@given(arrays(np.uint8, shapes))
def test_masks_written_by_pillow_are_read_and_rewritten_in_the_stored_layout(
    mask: np.ndarray,
) -> None:
    height, width = mask.shape
    legacy = png_bytes(mask, "L")  # how masks were stored before migration 0009
    np.testing.assert_array_equal(decode_stored_mask(legacy, width, height), mask)
    rows = decode_mask_rows(legacy, width, height)
    stored = rows.to_png()
    assert stored_rows(stored, width, height) is not None
    np.testing.assert_array_equal(decode_stored_mask(stored, width, height), mask)
    # Another size is not mistaken for the stored layout.
    assert stored_rows(stored, width + 1, height) is None


@st.composite
def superpixel_maps(draw: st.DrawFn) -> np.ndarray:
    labels = draw(arrays(np.int32, shapes, elements=st.integers(0, 5)))
    # Labels 0..n-1 with every label present, as stored maps have.
    return np.unique(labels, return_inverse=True)[1].reshape(labels.shape).astype(np.int32)


@settings(max_examples=60)
@given(superpixel_maps(), st.data())
def test_superpixel_runs_give_the_pixels_and_labels_of_the_dense_map(
    labels: np.ndarray, data: st.DataObject
) -> None:
    count = int(labels.max()) + 1
    kept = np.asarray(
        data.draw(st.lists(st.integers(0, count - 1), unique=True, max_size=count)), np.int64
    )
    everything = data.draw(st.booleans())
    runs = SuperpixelRuns.from_labels(labels, count, None if everything else kept)
    flat = labels.ravel()
    ids = np.asarray(data.draw(st.permutations(kept.tolist())), np.int64)
    pixels, per_id = runs.pixels_of(ids)
    expected = [np.flatnonzero(flat == i) for i in ids]
    assert per_id.tolist() == [e.size for e in expected]
    np.testing.assert_array_equal(pixels, np.concatenate([np.zeros(0, np.int64), *expected]))
    probe = np.asarray(data.draw(st.lists(st.integers(0, flat.size - 1))), np.int64)
    dense = flat[probe] if everything else np.where(np.isin(flat[probe], kept), flat[probe], -1)
    np.testing.assert_array_equal(runs.labels_at(probe), dense)


@settings(max_examples=60)
@given(superpixel_maps(), st.data())
def test_an_edit_applied_to_stored_rows_equals_the_dense_edit(
    labels: np.ndarray, data: st.DataObject
) -> None:
    height, width = labels.shape
    count = int(labels.max()) + 1
    queried = np.asarray(data.draw(st.lists(st.integers(0, count - 1), unique=True)), np.int64)
    queried.sort()
    runs = SuperpixelRuns.from_labels(labels, count, queried)
    before = data.draw(arrays(np.uint8, labels.shape, elements=st.sampled_from([0, 1, 255])))
    filled = data.draw(
        st.lists(st.sampled_from(queried.tolist()), unique=True) if queried.size else st.just([])
    )
    fills = [[int(i), data.draw(st.sampled_from([0, 1, 255]))] for i in filled]
    # Brushed runs: row-major stretches of queried, unfilled pixels.
    brushable = np.isin(labels.ravel(), queried) & ~np.isin(labels.ravel(), filled)
    brush = np.zeros(labels.size, bool)
    brush[data.draw(st.lists(st.integers(0, labels.size - 1)))] = True
    brush &= brushable
    classes = data.draw(arrays(np.uint8, labels.size, elements=st.sampled_from([0, 1, 255])))
    edges = np.flatnonzero(np.diff(np.concatenate(([0], brush.astype(np.int8), [0]))))
    run_list = []
    for start, end in zip(edges[::2], edges[1::2], strict=True):
        for position in range(int(start), int(end)):  # one-pixel runs: classes may differ
            run_list.append([position, 1, int(classes[position])])
    edit = MaskEdit.from_lists(fills, run_list)
    checked = check_edit(edit, runs, {1: runs}, {1: queried}, 1, {0, 1})
    rows = decode_mask_rows(encode_mask_png(before), width, height)
    applied = apply_edit(rows, checked)
    flat = before.ravel().copy()
    for superpixel, value in fills:
        flat[labels.ravel() == superpixel] = value
    flat[brush] = classes[brush]
    expected = flat.reshape(labels.shape)
    np.testing.assert_array_equal(decode_stored_mask(rows.to_png(), width, height), expected)
    changed = expected != before
    assert applied.changed_pixels == int(changed.sum())
    assert applied.touched_superpixels == sorted(set(labels[changed].tolist()))
    np.testing.assert_array_equal(
        applied.counts_delta, pixels_per_class(expected) - pixels_per_class(before)
    )
    assert applied.newly_labeled - applied.newly_unlabeled == int(
        (expected != 255).sum() - (before != 255).sum()
    )


@pytest.mark.parametrize("offset", [0, 70_000])  # uint16 and int32 storage
def test_superpixel_runs_from_a_stored_map_match_the_dense_map_across_pieces(
    offset: int,
) -> None:
    # Wider than one inflated piece (256 KB), with runs that cross piece boundaries: long
    # rows of one label, then noise.
    rng = np.random.default_rng(3)
    labels = np.repeat(np.arange(300) // 7, 700).reshape(300, 700).astype(np.int64)
    labels[150:] = rng.integers(0, 40, size=(150, 700))
    labels = np.unique(labels, return_inverse=True)[1].reshape(labels.shape) + offset
    count = int(labels.max()) + 1
    dtype_name, blob, _count = encode_superpixels(labels)
    assert dtype_name == ("int32" if offset else "uint16")
    kept = np.arange(offset, count, 3, dtype=np.int64)
    for chosen in (kept, None):
        dense = SuperpixelRuns.from_labels(labels, count, chosen)
        stored = SuperpixelRuns.from_zlib(blob, dtype_name, 700, 300, count, chosen)
        for field in ("starts", "lengths", "run_labels", "by_label", "label_offsets"):
            np.testing.assert_array_equal(getattr(stored, field), getattr(dense, field))
    with pytest.raises(ValueError, match="700x299"):
        SuperpixelRuns.from_zlib(blob, dtype_name, 700, 299, count, kept)


def test_superpixel_runs_past_16_bits_keep_their_lengths_and_labels() -> None:
    # Runs and labels are held in 16 bits where they fit: a 70,000 px run (one label filling
    # the first rows) and labels past 65,535 must come back whole.
    labels = np.zeros((300, 400), np.int64)
    labels[200:] = 70_000 + np.arange(100 * 400).reshape(100, 400) % 3
    count = 70_003
    for kept in (None, np.array([0, 70_001], np.int64)):
        runs = SuperpixelRuns.from_labels(labels, count, kept)
        assert runs.lengths.dtype == np.int32 and runs.run_labels.dtype == np.int32
        pixels, per_id = runs.pixels_of(np.array([0, 70_001], np.int64))
        flat = labels.ravel()
        expected = [np.flatnonzero(flat == 0), np.flatnonzero(flat == 70_001)]
        assert per_id.tolist() == [e.size for e in expected]
        np.testing.assert_array_equal(pixels, np.concatenate(expected))
        probe = np.array([0, 79_999, 80_000, 80_001, 119_999], np.int64)
        other = 70_000 if kept is None else -1  # not kept: in no superpixel of the runs
        np.testing.assert_array_equal(runs.labels_at(probe), [0, 0, other, 70_001, other])
    small = SuperpixelRuns.from_labels(np.arange(12, dtype=np.int32).reshape(3, 4), 12)
    assert small.lengths.dtype == np.uint16 and small.run_labels.dtype == np.uint16


def test_superpixel_run_cache_shrinks_to_its_most_recent_maps() -> None:
    runs = SuperpixelRuns.from_labels(np.arange(12, dtype=np.int32).reshape(3, 4), 12)
    cache = SuperpixelRunCache(max_bytes=4 * runs.nbytes)
    for key in ("a", "b", "c"):
        cache.put(key, runs)
    cache.get("a")
    cache.shrink(2 * runs.nbytes)
    assert cache.get("b") is None and cache.get("c") is runs and cache.get("a") is runs
    cache.put("d", runs)  # the bound is still the one it was made with
    assert len(cache) == 3
    cache.shrink(0)
    assert len(cache) == 0 and cache.size_bytes == 0


def test_superpixel_run_cache_keeps_the_most_recent_within_its_bytes() -> None:
    runs = SuperpixelRuns.from_labels(np.arange(12, dtype=np.int32).reshape(3, 4), 12)
    cache = SuperpixelRunCache(max_bytes=2 * runs.nbytes)
    for key in ("a", "b"):
        cache.put(key, runs)
    assert cache.get("a") is runs  # now "b" is the least recently used
    cache.put("c", runs)
    assert cache.get("b") is None and cache.get("a") is runs and cache.get("c") is runs
    assert cache.size_bytes == 2 * runs.nbytes and len(cache) == 2


@given(st.text(max_size=300))
def test_display_names_are_never_paths(name: str) -> None:
    shown = display_name(name)
    assert "/" not in shown and "\\" not in shown
    assert 0 < len(shown) <= 255


def _png_with_idat(png: bytes, idat: bytes) -> bytes:
    """``png`` (the stored layout: IHDR, one IDAT, IEND) with its IDAT data replaced."""
    start = png.index(b"IDAT") - 4
    (length,) = struct.unpack_from(">I", png, start)
    chunk = (
        struct.pack(">I", len(idat))
        + b"IDAT"
        + idat
        + struct.pack(">I", zlib.crc32(b"IDAT" + idat))
    )
    return png[:start] + chunk + png[start + 12 + length :]


def test_stored_rows_inflate_masks_of_many_pieces_and_refuse_cut_or_long_streams() -> None:
    # 517 x 333 of noise: ~170 KB of rows, inflated in several pieces into one buffer.
    rng = np.random.default_rng(3)
    mask = rng.integers(0, 256, (333, 517)).astype(np.uint8)
    mask[100:200] = 255
    png = encode_mask_png(mask)
    rows = stored_rows(png, 517, 333)
    assert rows is not None
    np.testing.assert_array_equal(rows.mask(), mask)
    stream = zlib.compress(bytes(rows.buffer))
    assert stored_rows(_png_with_idat(png, stream[:-9]), 517, 333) is None  # cut short
    longer = zlib.compress(bytes(rows.buffer) + b"\0" * 518)  # one row too many
    assert stored_rows(_png_with_idat(png, longer), 517, 333) is None
    assert stored_rows(_png_with_idat(png, b"not zlib at all"), 517, 333) is None
