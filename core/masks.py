"""Partial masks as stored: greyscale PNG, pixel = class index or 255 (unlabeled).

Tessera writes its masks in one fixed PNG layout that any PNG reader opens and that is cheap
to update: 8-bit greyscale, no interlace, every scanline with filter type 0 (None), one IDAT
chunk holding a single zlib stream (RLE strategy). Inflating that stream gives the pixels
directly, one leading zero byte per row (``MaskRows``); an edit writes into those bytes and
deflates them again. No PNG filtering is reversed or chosen, and the GET serves the stored
bytes as they are. PNGs in another layout (older rows, uploads) are read through Pillow.
"""

from __future__ import annotations

import io
import struct
import zlib
from dataclasses import dataclass
from typing import Final

import numpy as np
from numpy.typing import NDArray
from PIL import Image as PILImage
from zlib_ng import zlib_ng

UNLABELED: Final = 255

_SIGNATURE: Final = b"\x89PNG\r\n\x1a\n"
# 8-bit, colour type 0 (greyscale), deflate, adaptive filtering method 0, no interlace.
_GREY8: Final = (8, 0, 0, 0, 0)
# Masks are long runs of one value: the RLE strategy packs them as small as level 6 does
# (measured on 2048x1024 masks) in the time of level 1. zlib-ng writes the same format as
# zlib ~5x faster (0.5-0.8 ms against 3.8-4.2 ms for a 2048x1024 mask; bench/api_saves.py).
_ZLIB_LEVEL: Final = 1
_ZLIB_MEMLEVEL: Final = 9


def empty_mask(width: int, height: int) -> NDArray[np.uint8]:
    return np.full((height, width), UNLABELED, dtype=np.uint8)


@dataclass
class MaskRows:
    """A mask's scanlines as PNG filters them with type 0: ``buffer`` holds height rows of
    ``1 + width`` bytes, the first byte of each row 0. ``pixels`` is its writable
    (height, width + 1) uint8 view; pixel (y, x) is ``pixels[y, x + 1]``."""

    width: int
    height: int
    buffer: bytearray

    @classmethod
    def from_mask(cls, mask: NDArray[np.uint8], buffer: bytearray | None = None) -> MaskRows:
        """mask: (H, W) uint8; ``buffer``: bytes to fill instead of new ones when it has
        ``H * (W + 1)`` of them."""
        if mask.ndim != 2 or mask.dtype != np.uint8:
            raise ValueError(f"mask must be (H, W) uint8, got {mask.shape} {mask.dtype}")
        height, width = mask.shape
        size = height * (width + 1)
        if buffer is None or len(buffer) != size:
            buffer = bytearray(size)
        rows = cls(width, height, buffer)
        pixels = rows.pixels
        pixels[:, 0] = 0
        pixels[:, 1:] = mask
        return rows

    @property
    def pixels(self) -> NDArray[np.uint8]:
        view = np.frombuffer(self.buffer, dtype=np.uint8)
        return view.reshape(self.height, self.width + 1)

    def flat_positions(self, indices: NDArray[np.int64]) -> NDArray[np.int64]:
        """Row-major pixel indices (y * W + x) -> positions in ``buffer``."""
        return indices + indices // self.width + 1

    def mask(self) -> NDArray[np.uint8]:
        """(H, W) uint8 copy."""
        return self.pixels[:, 1:].copy()

    def to_png(self) -> bytes:
        compressor = zlib_ng.compressobj(
            _ZLIB_LEVEL, zlib_ng.DEFLATED, zlib_ng.MAX_WBITS, _ZLIB_MEMLEVEL, zlib_ng.Z_RLE
        )
        stream = compressor.compress(self.buffer) + compressor.flush()
        header = struct.pack(">II5B", self.width, self.height, *_GREY8)
        return b"".join(
            (_SIGNATURE, _chunk(b"IHDR", header), _chunk(b"IDAT", stream), _chunk(b"IEND", b""))
        )


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def encode_mask_png(mask: NDArray[np.uint8]) -> bytes:
    """mask: (H, W) uint8 -> PNG bytes (mode L) in the stored layout."""
    return MaskRows.from_mask(mask).to_png()


def stored_rows(
    png: bytes, width: int, height: int, buffer: bytearray | None = None
) -> MaskRows | None:
    """The rows of a PNG in the stored layout of this size, or None for any other PNG.
    ``buffer``: ``height * (width + 1)`` bytes to inflate into (overwritten) instead of a
    new one."""
    if not png.startswith(_SIGNATURE):
        return None
    position = len(_SIGNATURE)
    stream: list[bytes] = []
    header_ok = False
    while position + 8 <= len(png):
        (length,) = struct.unpack_from(">I", png, position)
        kind = png[position + 4 : position + 8]
        data = png[position + 8 : position + 8 + length]
        position += 12 + length
        if kind == b"IHDR":
            header_ok = data == struct.pack(">II5B", width, height, *_GREY8)
        elif kind == b"IDAT":
            stream.append(data)
        elif kind == b"IEND":
            break
        elif not kind[0] & 0x20:  # a critical chunk we do not write (palette, ...)
            return None
    if not header_ok or not stream:
        return None
    inflated = _inflate_into(b"".join(stream), height * (width + 1), buffer)
    if inflated is None:
        return None
    rows = MaskRows(width, height, inflated)
    if rows.pixels[:, 0].any():  # a row with another PNG filter: let Pillow undo it
        return None
    return rows


# Inflated a piece at a time into the rows' own buffer: ``bytearray(decompress(...))`` would
# fault in a second mask-sized buffer (mapped and unmapped per save: the API process keeps
# large blocks out of its heap, ``backend.memory``), ~1 ms of system time at 2048x1024.
_INFLATE_PIECE: Final = 64 * 1024


def _inflate_into(stream: bytes, size: int, buffer: bytearray | None = None) -> bytearray | None:
    """The zlib ``stream`` inflated into ``buffer`` (a new bytearray unless it has exactly
    ``size`` bytes), or None when it is not a complete zlib stream of that many bytes."""
    if buffer is None or len(buffer) != size:
        buffer = bytearray(size)
    view = memoryview(buffer)
    inflater = zlib_ng.decompressobj()
    position = 0
    pending = stream
    try:
        while pending and not inflater.eof:
            piece = inflater.decompress(pending, _INFLATE_PIECE)
            end = position + len(piece)
            if end > size:
                return None
            view[position:end] = piece
            position = end
            pending = inflater.unconsumed_tail
        if not inflater.eof:
            piece = inflater.flush()
            if position + len(piece) > size:
                return None
            view[position : position + len(piece)] = piece
            position += len(piece)
    except zlib_ng.error:  # type: ignore[misc]  # its stub declares an instance, not a class
        return None
    if position != size or not inflater.eof:
        return None
    return buffer


def decode_mask_rows(
    png: bytes | None, width: int, height: int, buffer: bytearray | None = None
) -> MaskRows:
    """A stored mask as writable rows (trusted: it passed validation when saved).
    ``buffer``: ``height * (width + 1)`` bytes to hold them (all overwritten), e.g. one the
    caller reuses from save to save: a new mask-sized buffer is mapped and faulted in anew
    each time (``backend.memory``), ~2 ms of system time at 2048x1024."""
    if png is not None:
        rows = stored_rows(png, width, height, buffer)
        if rows is not None:
            return rows
        with PILImage.open(io.BytesIO(png)) as image:
            mask = np.asarray(image, dtype=np.uint8)
    else:
        mask = empty_mask(width, height)
    return MaskRows.from_mask(mask, buffer)


def decode_stored_mask(png: bytes | None, width: int, height: int) -> NDArray[np.uint8]:
    """A stored mask (trusted: it passed validation when saved); None means all unlabeled."""
    if png is None:
        return empty_mask(width, height)
    rows = stored_rows(png, width, height)
    if rows is not None:
        return rows.mask()
    with PILImage.open(io.BytesIO(png)) as image:
        return np.asarray(image, dtype=np.uint8).copy()
