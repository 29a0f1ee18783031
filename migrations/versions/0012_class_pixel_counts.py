"""Pixels per class of each image's mask and ground truth, kept up to date by saves and
ground-truth uploads (``class_pixel_counts``), so the dashboard's class balance sums rows
instead of decoding PNGs; replaces the lazily filled ``annotation_class_counts`` cache.

Upgrade counts every stored mask and ground truth once. Downgrade recreates the old cache
empty (the old dashboard fills it on its next request).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02 00:50:00
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
import sqlalchemy as sa
from alembic import op
from PIL import Image as PILImage

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BATCH = 64
_UNLABELED = 255


def _source_enum() -> sa.Enum:
    return sa.Enum(
        "mask",
        "ground_truth",
        name="countsource",
        native_enum=False,
        create_constraint=True,
        length=16,
    )


def _count(png: bytes) -> list[tuple[int, int]]:
    """(class, pixels) of a stored PNG (any reader opens the stored layout), 255 left out."""
    with PILImage.open(io.BytesIO(png)) as image:
        values = np.asarray(image, dtype=np.uint8)
    bins = np.bincount(values.ravel(), minlength=256)
    bins[_UNLABELED] = 0
    return [(int(k), int(bins[k])) for k in np.flatnonzero(bins)]


def _backfill(source: str, image_id: sa.ColumnClause[int], png: sa.ColumnClause[bytes]) -> None:
    connection = op.get_bind()
    counts = sa.table(
        "class_pixel_counts",
        sa.column("image_id", sa.Integer()),
        sa.column("source", sa.String()),
        sa.column("class_index", sa.Integer()),
        sa.column("pixels", sa.Integer()),
    )
    ids = list(connection.scalars(sa.select(image_id).where(png.is_not(None)).order_by(image_id)))
    for start in range(0, len(ids), _BATCH):
        batch = ids[start : start + _BATCH]
        rows = [
            {"image_id": owner, "source": source, "class_index": k, "pixels": pixels}
            for owner, data in connection.execute(
                sa.select(image_id, png).where(image_id.in_(batch))
            )
            for k, pixels in _count(data)
        ]
        if rows:
            connection.execute(sa.insert(counts), rows)


def upgrade() -> None:
    op.create_table(
        "class_pixel_counts",
        sa.Column("image_id", sa.Integer(), nullable=False),
        sa.Column("source", _source_enum(), nullable=False),
        sa.Column("class_index", sa.Integer(), nullable=False),
        sa.Column("pixels", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["image_id"],
            ["images.id"],
            name=op.f("fk_class_pixel_counts_image_id_images"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "image_id", "source", "class_index", name=op.f("pk_class_pixel_counts")
        ),
    )
    annotations = sa.table(
        "annotations", sa.column("image_id", sa.Integer()), sa.column("mask_png", sa.LargeBinary())
    )
    images = sa.table(
        "images", sa.column("id", sa.Integer()), sa.column("ground_truth_png", sa.LargeBinary())
    )
    _backfill("mask", annotations.c.image_id, annotations.c.mask_png)
    _backfill("ground_truth", images.c.id, images.c.ground_truth_png)
    op.drop_table("annotation_class_counts")


def downgrade() -> None:
    op.create_table(
        "annotation_class_counts",
        sa.Column("annotation_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("counts", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["annotation_id"],
            ["annotations.id"],
            name=op.f("fk_annotation_class_counts_annotation_id_annotations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("annotation_id", name=op.f("pk_annotation_class_counts")),
    )
    op.drop_table("class_pixel_counts")
