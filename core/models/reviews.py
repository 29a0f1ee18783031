"""A lead's decisions on submitted images: accepted, or sent back with a comment (issue 15)."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, Text
from sqlalchemy.orm import Mapped, mapped_column

from core.models.base import Base, UTCDateTime, utc_now
from core.models.projects import _str_enum


class ReviewDecision(enum.StrEnum):
    accepted = "accepted"
    # The query goes back to its annotator's queue with the comment.
    sent_back = "sent_back"


class Review(Base):
    """One decision on one query's submitted labels; rows are only ever inserted, so they
    are the image's review history. The query's review state is its newest row."""

    __tablename__ = "reviews"
    __table_args__ = (Index("ix_reviews_query_id_id", "query_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), index=True
    )
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"), index=True)
    query_id: Mapped[int] = mapped_column(ForeignKey("queries.id", ondelete="CASCADE"))
    reviewer_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), nullable=True
    )
    # Who had submitted the labels reviewed (the last saver of the query).
    annotator_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), nullable=True
    )
    decision: Mapped[ReviewDecision] = mapped_column(_str_enum(ReviewDecision))
    comment: Mapped[str] = mapped_column(Text, default="")
    # The mask version the decision was made on.
    mask_version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
