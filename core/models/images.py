"""Images (their bytes live in the database) and their cached superpixel maps."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import (
    Enum,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, deferred, mapped_column

from core.models.base import Base, UTCDateTime, utc_now


class Split(enum.StrEnum):
    pool = "pool"
    validation = "validation"
    test = "test"


class ImageStatus(enum.StrEnum):
    processing = "processing"  # uploaded; superpixels not computed yet
    ready = "ready"


def _str_enum(enum_class: type[enum.StrEnum]) -> Enum:
    return Enum(enum_class, native_enum=False, create_constraint=True, length=16)


class Image(Base):
    __tablename__ = "images"
    __table_args__ = (
        # A duplicate upload is reported instead of stored twice.
        UniqueConstraint("project_id", "sha256", name="uq_images_project_sha256"),
        Index("ix_images_project_split", "project_id", "split"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    # The uploaded name, for display and export manifests only: never a filesystem path.
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(50))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    split: Mapped[Split] = mapped_column(_str_enum(Split), default=Split.pool)
    status: Mapped[ImageStatus] = mapped_column(
        _str_enum(ImageStatus), default=ImageStatus.processing
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    # Large columns are deferred so listing images never drags their bytes along.
    data: Mapped[bytes] = deferred(mapped_column(LargeBinary, nullable=False))
    thumbnail_jpeg: Mapped[bytes] = deferred(mapped_column(LargeBinary, nullable=False))
    ground_truth_png: Mapped[bytes | None] = deferred(mapped_column(LargeBinary, nullable=True))
    # Large images only (backend/images/previews.py): a <= 2 Mpx JPEG shown while the full
    # image loads; null below the threshold, and for older images until first requested.
    preview_jpeg: Mapped[bytes | None] = deferred(mapped_column(LargeBinary, nullable=True))


class SuperpixelMap(Base):
    """Per-pixel superpixel ids of one image for one (size, algorithm).

    ``labels_zlib`` is zlib(raw little-endian ``dtype`` array of shape (height, width)), labels
    0..count-1; the API serves these bytes unchanged (see ``core.superpixel_codec``).
    """

    __tablename__ = "superpixel_maps"
    __table_args__ = (
        UniqueConstraint("image_id", "size", "algorithm", name="uq_superpixel_maps_parameters"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"))
    size: Mapped[int] = mapped_column(Integer)
    algorithm: Mapped[str] = mapped_column(String(32))
    dtype: Mapped[str] = mapped_column(String(8))  # "uint16" or "int32"
    count: Mapped[int] = mapped_column(Integer)
    labels_zlib: Mapped[bytes] = deferred(mapped_column(LargeBinary, nullable=False))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
