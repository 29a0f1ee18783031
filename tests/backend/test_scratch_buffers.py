"""A save's mask rows inflated into a reused buffer (``backend.memory.ScratchBuffers``) are the
stored mask, whatever the buffer held before; the pool keeps at most its byte budget."""

from __future__ import annotations

import numpy as np

from backend.memory import ScratchBuffers
from core.masks import decode_mask_rows, encode_mask_png


def _mask(seed: int, width: int = 40, height: int = 30) -> np.ndarray:
    rng = np.random.default_rng(seed)
    mask = np.full((height, width), 255, np.uint8)
    mask[rng.integers(0, height, 200), rng.integers(0, width, 200)] = rng.integers(0, 3, 200)
    return mask


def test_rows_decoded_into_a_used_buffer_are_the_stored_mask() -> None:
    width, height = 40, 30
    buffer = bytearray(b"\x07" * (height * (width + 1)))  # stale bytes from an earlier save
    for seed in range(3):
        mask = _mask(seed, width, height)
        rows = decode_mask_rows(encode_mask_png(mask), width, height, buffer)
        assert rows.buffer is buffer
        np.testing.assert_array_equal(rows.mask(), mask)
        assert not rows.pixels[:, 0].any()
    # No stored mask yet: all unlabeled, also in a used buffer.
    empty = decode_mask_rows(None, width, height, buffer)
    assert empty.buffer is buffer
    assert (empty.mask() == 255).all()


def test_a_buffer_of_another_size_is_not_used() -> None:
    mask = _mask(1)
    other = bytearray(10)
    rows = decode_mask_rows(encode_mask_png(mask), 40, 30, bytearray(10))
    np.testing.assert_array_equal(rows.mask(), mask)
    empty = decode_mask_rows(None, 40, 30, other)
    assert empty.buffer is not other
    assert (empty.mask() == 255).all()


def test_the_pool_reuses_buffers_of_the_size_asked_and_keeps_its_budget() -> None:
    pool = ScratchBuffers(max_bytes=300)
    first = pool.take(100)
    pool.give(first)
    assert pool.take(100) is first
    assert pool.take(100) is not first  # taken: a new one
    for _ in range(5):
        pool.give(bytearray(100))
    assert pool.kept_bytes == 300
    other = pool.take(50)
    assert len(other) == 50
    pool.clear()
    assert pool.kept_bytes == 0
