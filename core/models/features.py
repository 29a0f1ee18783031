"""Cached encoder features: one row per image and encoder fingerprint (issue 11).

A frozen pretrained encoder gives the same features for an image every round, so the worker
computes them once (at ingest, or on first use) and training and scoring run only the
decoder and head. ``fingerprint`` names the encoder, its weights and the input size; a
changed fingerprint finds no row, and the features are computed again.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, deferred, mapped_column

from core.models.base import Base, UTCDateTime, utc_now


class ImageFeatures(Base):
    """``data`` is zlib(the feature maps as little-endian float16, concatenated in order);
    ``shapes`` lists each map's (channels, height, width)."""

    __tablename__ = "image_features"
    __table_args__ = (
        UniqueConstraint("image_id", "fingerprint", name="uq_image_features_image_fingerprint"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"))
    fingerprint: Mapped[str] = mapped_column(String(128))
    shapes: Mapped[list[Any]] = mapped_column(JSON)
    raw_bytes: Mapped[int] = mapped_column(Integer)  # before compression
    data: Mapped[bytes] = deferred(mapped_column(LargeBinary, nullable=False))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
