"""Properties of the wire and storage encodings (no database needed)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from backend.export.service import rle_counts, rle_decode
from backend.images.superpixels import decode_superpixels, encode_superpixels
from backend.images.validation import display_name
from backend.masks import decode_stored_mask, encode_mask_png

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


@given(st.text(max_size=300))
def test_display_names_are_never_paths(name: str) -> None:
    shown = display_name(name)
    assert "/" not in shown and "\\" not in shown
    assert 0 < len(shown) <= 255
