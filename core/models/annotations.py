"""The current partial mask of each image and the append-only history of who changed it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Integer, LargeBinary, false
from sqlalchemy.orm import Mapped, deferred, mapped_column

from core.models.base import Base, UTCDateTime, utc_now


class Annotation(Base):
    """Created with its image at version 0 (all pixels unlabeled, ``mask_png`` NULL).

    Every accepted save is a compare-and-set on ``version``, so a stale writer changes nothing.
    """

    __tablename__ = "annotations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"), unique=True)
    version: Mapped[int] = mapped_column(Integer, default=0)
    # Greyscale PNG, pixel = class index or 255 (unlabeled).
    mask_png: Mapped[bytes | None] = deferred(mapped_column(LargeBinary, nullable=True))
    labeled_pixels: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    updated_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), nullable=True
    )


class AnnotationSubmission(Base):
    """One accepted save; rows are only ever inserted (provenance and cost accounting)."""

    __tablename__ = "annotation_submissions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    annotation_id: Mapped[int] = mapped_column(
        ForeignKey("annotations.id", ondelete="CASCADE"), index=True
    )
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), nullable=True
    )
    round_id: Mapped[int | None] = mapped_column(
        ForeignKey("rounds.id", ondelete="SET NULL"), nullable=True, index=True
    )
    query_id: Mapped[int | None] = mapped_column(
        ForeignKey("queries.id", ondelete="SET NULL"), nullable=True
    )
    version: Mapped[int] = mapped_column(Integer)  # the version this save created
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    # Pixels whose value this save changed, and the superpixels they lie in.
    changed_pixels: Mapped[int] = mapped_column(Integer)
    changed_superpixels: Mapped[int] = mapped_column(Integer)
    superpixel_ids: Mapped[list[int]] = mapped_column(JSON)
    clicks: Mapped[int] = mapped_column(Integer, default=0)
    seconds: Mapped[float] = mapped_column(Float, default=0.0)
    # The annotator started from the model's prediction (accepted the pre-fill, then fixed).
    prefilled: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
