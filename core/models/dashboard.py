"""What the lead dashboard needs beyond the labeling tables: save conflicts, uploaded
simulation results and per-class pixel counts."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Enum, ForeignKey, Index, Integer, String
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


class CountSource(enum.StrEnum):
    mask = "mask"  # the image's partial mask (annotations.mask_png)
    ground_truth = "ground_truth"  # images.ground_truth_png


class ClassPixelCount(Base):
    """Pixels of one class in one image's stored mask or ground truth, kept in step with the
    bytes: a save adds its per-class change in the same transaction as the new mask
    (``core.class_counts``), storing or deleting ground truth replaces its rows. The class
    balance sums these rows instead of decoding PNGs. Unlabeled (255) is not counted; a
    class whose count fell back to 0 keeps its row."""

    __tablename__ = "class_pixel_counts"

    image_id: Mapped[int] = mapped_column(
        ForeignKey("images.id", ondelete="CASCADE"), primary_key=True
    )
    source: Mapped[CountSource] = mapped_column(
        Enum(CountSource, native_enum=False, create_constraint=True, length=16),
        primary_key=True,
    )
    class_index: Mapped[int] = mapped_column(Integer, primary_key=True)
    pixels: Mapped[int] = mapped_column(Integer)
