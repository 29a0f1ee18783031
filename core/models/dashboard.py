"""What the lead dashboard needs beyond the labeling tables: save conflicts and uploaded
simulation results."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from core.models.base import Base, UTCDateTime, utc_now


class SaveConflict(Base):
    """One refused save (412: the mask changed since the version the annotator edited).

    Insert-only, written by the save endpoint after it rolled the save back; the team table
    counts them per annotator.
    """

    __tablename__ = "save_conflicts"
    __table_args__ = (Index("ix_save_conflicts_project_user", "project_id", "user_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    image_id: Mapped[int | None] = mapped_column(
        ForeignKey("images.id", ondelete="SET NULL"), nullable=True
    )
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), nullable=True
    )
    expected_version: Mapped[int] = mapped_column(Integer)
    current_version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)


class SimulationResult(Base):
    """The rows of one ``tessera simulate`` run (its ``rounds.jsonl``) uploaded to a project,
    so the learning curve can show what other strategies would have bought."""

    __tablename__ = "simulation_results"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    uploaded_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), nullable=True
    )
    # One dict per line of rounds.jsonl (strategy, seed, round, labeled_pixel_fraction, ...).
    rows: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)


class AnnotationClassCounts(Base):
    """Pixels per class of one stored mask version, so the class balance decodes each mask
    once per version rather than on every dashboard request. Filled lazily by the dashboard;
    a row whose ``version`` is behind its annotation's is recomputed."""

    __tablename__ = "annotation_class_counts"

    annotation_id: Mapped[int] = mapped_column(
        ForeignKey("annotations.id", ondelete="CASCADE"), primary_key=True
    )
    version: Mapped[int] = mapped_column(Integer)
    # {"<class index>": pixels}, unlabeled (255) left out.
    counts: Mapped[dict[str, int]] = mapped_column(JSON)
