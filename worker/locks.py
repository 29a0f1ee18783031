"""Per-project leases in the database (``project_locks``): one training per project at a time.

Taking, renewing and releasing are conditional UPDATEs, so the database decides; a holder
that stops renewing (its worker was killed) loses the lock when ``expires_at`` passes, and
the next worker takes it over.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.models import ProjectLock
from core.models.base import utc_now

TRAINING_LOCK = "training"


def _ensure_row(session: Session, project_id: int, name: str) -> None:
    exists = session.scalar(
        select(ProjectLock.project_id).where(
            ProjectLock.project_id == project_id, ProjectLock.name == name
        )
    )
    if exists is not None:
        return
    try:
        session.add(ProjectLock(project_id=project_id, name=name))
        session.commit()
    except IntegrityError:  # another worker created it first
        session.rollback()


def try_acquire(
    session: Session,
    project_id: int,
    name: str,
    holder: str,
    job_id: int,
    lease_seconds: float,
    now: Callable[[], datetime] = utc_now,
) -> bool:
    """Takes the lock when it is free, lapsed or already ours; commits. ``now`` is the
    clock the lease is read and written with (a test passes its own to lapse a lease)."""
    _ensure_row(session, project_id, name)
    at = now()
    taken = session.execute(
        update(ProjectLock)
        .where(
            ProjectLock.project_id == project_id,
            ProjectLock.name == name,
            or_(
                ProjectLock.holder.is_(None),
                ProjectLock.holder == holder,
                ProjectLock.expires_at < at,
            ),
        )
        .values(
            holder=holder,
            job_id=job_id,
            acquired_at=at,
            expires_at=at + timedelta(seconds=lease_seconds),
        )
        .execution_options(synchronize_session=False)
    )
    session.commit()
    return bool(taken.rowcount == 1)  # type: ignore[attr-defined]


def renew(
    session: Session,
    project_id: int,
    name: str,
    holder: str,
    lease_seconds: float,
    now: Callable[[], datetime] = utc_now,
) -> bool:
    """Extends our lease; False when the lock is no longer ours. Does not commit, so a
    final write can be fenced by it in the same transaction."""
    renewed = session.execute(
        update(ProjectLock)
        .where(
            ProjectLock.project_id == project_id,
            ProjectLock.name == name,
            ProjectLock.holder == holder,
        )
        .values(expires_at=now() + timedelta(seconds=lease_seconds))
        .execution_options(synchronize_session=False)
    )
    return bool(renewed.rowcount == 1)  # type: ignore[attr-defined]


def release(session: Session, project_id: int, name: str, holder: str) -> None:
    """Frees the lock if we still hold it; commits."""
    session.execute(
        update(ProjectLock)
        .where(
            ProjectLock.project_id == project_id,
            ProjectLock.name == name,
            ProjectLock.holder == holder,
        )
        .values(holder=None, job_id=None, expires_at=None)
        .execution_options(synchronize_session=False)
    )
    session.commit()


def current_holder(session: Session, project_id: int, name: str) -> ProjectLock | None:
    return session.scalar(
        select(ProjectLock).where(ProjectLock.project_id == project_id, ProjectLock.name == name)
    )
