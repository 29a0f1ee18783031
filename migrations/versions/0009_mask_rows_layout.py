"""Stored masks in the updatable PNG layout (issue 13): filter type 0 on every row, one zlib
stream, so a save inflates, writes and deflates without PNG filtering (``core.masks``).

Existing masks are re-encoded in that layout (pixels unchanged; any PNG reader still opens
them). On PostgreSQL the column is stored EXTERNAL: the bytes are already deflated, so TOAST
no longer tries to compress them again on every save. Downgrade writes Pillow's PNGs back.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 21:40:00
"""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Callable, Sequence

import numpy as np
import sqlalchemy as sa
from alembic import op
from PIL import Image as PILImage

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BATCH = 64
_SIGNATURE = b"\x89PNG\r\n\x1a\n"

# A frozen copy of the encoder in core/masks.py at this revision: the migration keeps
# writing what this revision means even after that module changes.


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _rows_png(mask: np.ndarray) -> bytes:
    height, width = mask.shape
    rows = np.zeros((height, width + 1), dtype=np.uint8)
    rows[:, 1:] = mask
    compressor = zlib.compressobj(1, zlib.DEFLATED, zlib.MAX_WBITS, 9, zlib.Z_RLE)
    stream = compressor.compress(rows.tobytes()) + compressor.flush()
    header = struct.pack(">II5B", width, height, 8, 0, 0, 0, 0)
    return b"".join(
        (_SIGNATURE, _chunk(b"IHDR", header), _chunk(b"IDAT", stream), _chunk(b"IEND", b""))
    )


def _pillow_png(mask: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    PILImage.fromarray(mask, mode="L").save(buffer, format="PNG", optimize=False)
    return buffer.getvalue()


def _reencode(encode: Callable[[np.ndarray], bytes]) -> None:
    connection = op.get_bind()
    annotations = sa.table(
        "annotations", sa.column("id", sa.Integer()), sa.column("mask_png", sa.LargeBinary())
    )
    ids = [
        row[0]
        for row in connection.execute(
            sa.select(annotations.c.id)
            .where(annotations.c.mask_png.is_not(None))
            .order_by(annotations.c.id)
        )
    ]
    for start in range(0, len(ids), _BATCH):
        batch = ids[start : start + _BATCH]
        rows = connection.execute(
            sa.select(annotations.c.id, annotations.c.mask_png).where(annotations.c.id.in_(batch))
        ).all()
        for annotation_id, png in rows:
            with PILImage.open(io.BytesIO(png)) as image:
                mask = np.asarray(image, dtype=np.uint8)
            connection.execute(
                sa.update(annotations)
                .where(annotations.c.id == annotation_id)
                .values(mask_png=encode(mask))
            )


def upgrade() -> None:
    _reencode(_rows_png)
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE annotations ALTER COLUMN mask_png SET STORAGE EXTERNAL")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE annotations ALTER COLUMN mask_png SET STORAGE EXTENDED")
    _reencode(_pillow_png)
