"""Job rows as a worker sees them: claimed with a lease, kept alive by a heartbeat thread
that also publishes progress, and finished, failed or released with fenced UPDATEs.

Every write that ends a step is ``UPDATE jobs ... WHERE id = :id AND worker = :me``: a
worker whose lease was taken over (it stalled, or was thought dead) changes nothing, so at
most one execution's results are ever committed.
"""

from __future__ import annotations

import contextvars
import enum
import logging
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any

from sqlalchemy import or_, update
from sqlalchemy.orm import Session

from core.models import Job, JobStatus, Round, RoundStatus
from core.models.base import utc_now
from worker.runtime import WorkerRuntime

log = logging.getLogger(__name__)

# A renewal extends something else held for the job (a project lock, a parent job's lease)
# inside the heartbeat's transaction; it returns False when that thing is no longer ours.
Renewal = Callable[[Session], bool]


class LeaseLost(Exception):
    """Another worker took this job over; the current execution must stop writing."""


class ClaimOutcome(enum.Enum):
    claimed = "claimed"
    finished = "finished"  # succeeded, failed or cancelled: nothing to do
    busy = "busy"  # a live lease elsewhere; that worker will finish it
    missing = "missing"


def claim_job(session: Session, job_id: int, holder: str, lease_seconds: float) -> ClaimOutcome:
    """Marks the job running under ``holder`` if nobody else holds a live lease; commits."""
    now = utc_now()
    claimed = session.execute(
        update(Job)
        .where(
            Job.id == job_id,
            Job.status.in_((JobStatus.queued, JobStatus.running)),
            or_(Job.worker.is_(None), Job.lease_expires_at.is_(None), Job.lease_expires_at < now),
        )
        .values(
            status=JobStatus.running,
            worker=holder,
            lease_expires_at=now + timedelta(seconds=lease_seconds),
            heartbeat_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    session.commit()
    if claimed.rowcount == 1:  # type: ignore[attr-defined]
        job = session.get(Job, job_id, populate_existing=True)
        if job is not None and job.started_at is None:
            job.started_at = now
            session.commit()
        return ClaimOutcome.claimed
    job = session.get(Job, job_id, populate_existing=True)
    if job is None:
        return ClaimOutcome.missing
    if job.status in (JobStatus.succeeded, JobStatus.failed, JobStatus.cancelled):
        return ClaimOutcome.finished
    return ClaimOutcome.busy


def eta(started_at: datetime | None, progress: float, now: datetime) -> datetime | None:
    """Linear extrapolation of the time spent so far to the remaining progress."""
    if started_at is None or progress <= 0.0 or progress >= 1.0:
        return None
    elapsed = (now - started_at).total_seconds()
    return now + timedelta(seconds=elapsed * (1.0 - progress) / progress)


@dataclass
class JobLease:
    """A claimed job kept alive in the background while a step runs.

    ``report`` only records progress in memory; the heartbeat thread writes it with the
    lease renewal every ``lease/4`` seconds (at most every 1 s), so the training loop never
    waits on the database.
    """

    runtime: WorkerRuntime
    job_id: int
    holder: str
    started_at: datetime | None = None
    _renewals: list[Renewal] = field(default_factory=list)
    _progress: float = 0.0
    _message: str | None = None
    _lost: threading.Event = field(default_factory=threading.Event)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    # Held during a heartbeat, so a renewal removed here is never run afterwards.
    _renewals_lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def lease_seconds(self) -> float:
        return self.runtime.settings.job_lease_seconds

    @property
    def interval(self) -> float:
        # At least one beat a second, so the API shows progress while it happens.
        return min(self.lease_seconds / 4.0, 1.0)

    def __enter__(self) -> JobLease:
        with self.runtime.session_factory() as session:
            job = session.get(Job, self.job_id)
            self.started_at = job.started_at if job is not None else None
            if job is not None:
                self._progress = job.progress
        # In the job's context, so the heartbeat's log lines carry its job id too.
        self._thread = threading.Thread(
            target=contextvars.copy_context().run,
            args=(self._beat,),
            name=f"heartbeat-job-{self.job_id}",
            daemon=True,
        )
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()
        self._thread = None

    @property
    def progress(self) -> float:
        with self._lock:
            return self._progress

    def report(self, progress: float, message: str | None = None) -> None:
        with self._lock:
            self._progress = min(max(progress, 0.0), 1.0)
            if message is not None:
                self._message = message[:500]

    def add_renewal(self, renewal: Renewal) -> None:
        with self._renewals_lock:
            self._renewals.append(renewal)

    def remove_renewal(self, renewal: Renewal) -> None:
        with self._renewals_lock:
            self._renewals.remove(renewal)

    def check(self) -> None:
        """Raises LeaseLost once a heartbeat found the job taken over."""
        if self._lost.is_set():
            raise LeaseLost(f"job {self.job_id} was taken over by another worker")

    def _beat(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self._heartbeat()
            except Exception:  # a database hiccup: the lease outlives a few missed beats
                log.exception("heartbeat of job %s failed", self.job_id)

    def _heartbeat(self) -> None:
        with self._lock:
            progress, message = self._progress, self._message
        now = utc_now()
        values: dict[str, Any] = {
            "lease_expires_at": now + timedelta(seconds=self.lease_seconds),
            "heartbeat_at": now,
            "progress": progress,
            "eta_at": eta(self.started_at, progress, now),
        }
        if message is not None:
            values["message"] = message
        with self._renewals_lock, self.runtime.session_factory() as session:
            renewed = session.execute(
                update(Job)
                .where(
                    Job.id == self.job_id,
                    Job.worker == self.holder,
                    Job.status == JobStatus.running,
                )
                .values(**values)
                .execution_options(synchronize_session=False)
            )
            ours = renewed.rowcount == 1  # type: ignore[attr-defined]
            for renewal in self._renewals:
                ours = renewal(session) and ours
            session.commit()
        if not ours:
            self._lost.set()

    def fence(self, session: Session, **values: Any) -> None:
        """Writes ``values`` on the job in the caller's transaction, only if still ours;
        raises LeaseLost (the caller rolls back) otherwise."""
        if "progress" in values and "eta_at" not in values:
            values["eta_at"] = eta(self.started_at, values["progress"], utc_now())
        updated = session.execute(
            update(Job)
            .where(
                Job.id == self.job_id,
                Job.worker == self.holder,
                Job.status == JobStatus.running,
            )
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        if updated.rowcount != 1:  # type: ignore[attr-defined]
            raise LeaseLost(f"job {self.job_id} was taken over by another worker")

    def finish(self, session: Session, message: str) -> None:
        """Marks the job succeeded in the caller's transaction (fenced); the caller commits."""
        now = utc_now()
        self.fence(
            session,
            status=JobStatus.succeeded,
            progress=1.0,
            message=message[:500],
            finished_at=now,
            worker=None,
            lease_expires_at=None,
            eta_at=None,
        )

    def hand_off(self, session: Session, message: str, progress: float) -> None:
        """Leaves the job running with nobody holding it (it waits for other jobs, whose
        heartbeats keep its lease fresh); the caller commits."""
        self.fence(
            session,
            worker=None,
            message=message[:500],
            progress=progress,
            lease_expires_at=utc_now() + timedelta(seconds=self.lease_seconds),
        )


def error_text(error: BaseException) -> str:
    """The error line first, then the innermost frames (enough to find it, short enough to read)."""
    frames = traceback.format_exception(type(error), error, error.__traceback__, limit=-4)
    return f"{type(error).__name__}: {error}\n\n{''.join(frames)}"[:8000]


def fail_job(runtime: WorkerRuntime, job_id: int, holder: str | None, error: str) -> bool:
    """Marks the job (and its round, for a round job) failed with ``error``, if ``holder``
    still holds it (None: whoever does); commits. False when it was not ours."""
    now = utc_now()
    with runtime.session_factory() as session:
        conditions = [Job.id == job_id, Job.status.in_((JobStatus.queued, JobStatus.running))]
        if holder is not None:
            conditions.append(Job.worker == holder)
        failed = session.execute(
            update(Job)
            .where(*conditions)
            .values(
                status=JobStatus.failed,
                error=error,
                finished_at=now,
                worker=None,
                lease_expires_at=None,
                eta_at=None,
            )
            .execution_options(synchronize_session=False)
        )
        if failed.rowcount != 1:  # type: ignore[attr-defined]
            session.rollback()
            return False
        job = session.get(Job, job_id)
        if job is not None and job.kind == "round" and job.round_id is not None:
            session.execute(
                update(Round)
                .where(
                    Round.id == job.round_id,
                    Round.status.not_in((RoundStatus.labeling, RoundStatus.complete)),
                )
                .values(status=RoundStatus.failed, finished_at=now)
                .execution_options(synchronize_session=False)
            )
        session.commit()
        return True
