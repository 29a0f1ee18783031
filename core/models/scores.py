"""What a round's scoring step measured on each pool image, read by its query step."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, ForeignKey, Integer, LargeBinary, UniqueConstraint
from sqlalchemy.orm import Mapped, deferred, mapped_column

from core.models.base import Base, UTCDateTime, utc_now


class ImageScore(Base):
    """MC-dropout uncertainty of one pool image under one round's model.

    ``superpixel_scores`` is zlib(little-endian float32 (n,)), NaN = nothing left to label;
    ``unlabeled_pixels`` is zlib(little-endian int32 (n,)), per superpixel of the map;
    ``superpixel_classes`` is zlib(uint8 (n,)): the class the model predicts for most of each
    superpixel's pixels (NULL for rows scored before it was stored).
    One row per (round, image): a re-run scoring chunk finds its rows and skips them.
    """

    __tablename__ = "image_scores"
    __table_args__ = (UniqueConstraint("round_id", "image_id", name="uq_image_scores_round_image"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    round_id: Mapped[int] = mapped_column(ForeignKey("rounds.id", ondelete="CASCADE"), index=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"), index=True)
    superpixel_map_id: Mapped[int] = mapped_column(
        ForeignKey("superpixel_maps.id", ondelete="CASCADE")
    )
    image_score: Mapped[float | None] = mapped_column(Float, nullable=True)  # NULL: all labeled
    superpixel_scores: Mapped[bytes] = deferred(mapped_column(LargeBinary, nullable=False))
    unlabeled_pixels: Mapped[bytes] = deferred(mapped_column(LargeBinary, nullable=False))
    superpixel_classes: Mapped[bytes | None] = deferred(mapped_column(LargeBinary, nullable=True))
    # Kept until the query step copies it onto the picked images' queries, then cleared.
    uncertainty_png: Mapped[bytes | None] = deferred(mapped_column(LargeBinary, nullable=True))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
