"""Active-learning rounds and the regions each round asks people to label."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, deferred, mapped_column

from core.models.base import Base, UTCDateTime, utc_now


class RoundStatus(enum.StrEnum):
    pending = "pending"
    training = "training"
    scoring = "scoring"
    querying = "querying"
    labeling = "labeling"  # queries are open; annotators may edit their superpixels
    complete = "complete"
    failed = "failed"


# A round in one of these still holds the project (one unfinished round per project at a time).
UNFINISHED_ROUND_STATUSES = (
    RoundStatus.pending,
    RoundStatus.training,
    RoundStatus.scoring,
    RoundStatus.querying,
    RoundStatus.labeling,
)


class QueryStatus(enum.StrEnum):
    open = "open"  # waiting for an annotator (or its lease ran out; see lease_expires_at)
    assigned = "assigned"
    done = "done"


class Round(Base):
    __tablename__ = "rounds"
    __table_args__ = (UniqueConstraint("project_id", "number", name="uq_rounds_project_number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    strategy: Mapped[str] = mapped_column(String(32))
    status: Mapped[RoundStatus] = mapped_column(
        Enum(RoundStatus, native_enum=False, create_constraint=True, length=16),
        default=RoundStatus.pending,
    )
    spent_pixels: Mapped[int] = mapped_column(BigInteger, default=0)
    spent_superpixels: Mapped[int] = mapped_column(Integer, default=0)
    spent_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class Query(Base):
    """One picked image of a round and the superpixels of it that must be labeled."""

    __tablename__ = "queries"
    __table_args__ = (
        UniqueConstraint("round_id", "image_id", name="uq_queries_round_image"),
        Index("ix_queries_round_status", "round_id", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    round_id: Mapped[int] = mapped_column(ForeignKey("rounds.id", ondelete="CASCADE"))
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"), index=True)
    superpixel_map_id: Mapped[int] = mapped_column(
        ForeignKey("superpixel_maps.id", ondelete="CASCADE")
    )
    superpixel_ids: Mapped[list[int]] = mapped_column(JSON)
    superpixel_scores: Mapped[list[float]] = mapped_column(JSON)
    # The model's predicted class of each asked superpixel, in superpixel_ids' order (the
    # annotator may accept it as a pre-fill); NULL when the round had no model (random).
    predicted_classes: Mapped[list[int] | None] = mapped_column(JSON, nullable=True)
    image_score: Mapped[float | None] = mapped_column(Float, nullable=True)
    # Per-pixel uncertainty quantized to 0..255, as a greyscale PNG.
    uncertainty_png: Mapped[bytes | None] = deferred(mapped_column(LargeBinary, nullable=True))
    status: Mapped[QueryStatus] = mapped_column(
        Enum(QueryStatus, native_enum=False, create_constraint=True, length=16),
        default=QueryStatus.open,
    )
    assignee_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), nullable=True
    )
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
