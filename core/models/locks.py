"""Leases on per-project work that must not run twice at once (training)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from core.models.base import Base, UTCDateTime


class ProjectLock(Base):
    """One row per (project, name); held while ``holder`` is set and ``expires_at`` is ahead.

    Taken and renewed with conditional UPDATEs (``worker/locks.py``), so the database decides
    who holds it; a holder that stops renewing loses it when ``expires_at`` passes.
    """

    __tablename__ = "project_locks"

    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True
    )
    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    holder: Mapped[str | None] = mapped_column(String(200), nullable=True)
    job_id: Mapped[int | None] = mapped_column(
        ForeignKey("jobs.id", ondelete="SET NULL"), nullable=True
    )
    acquired_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
