"""Starting and closing active-learning rounds. Functions flush; the request commits."""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from core.dispatch import ORACLE_JOB, ROUND_JOB
from core.errors import Conflict
from core.models import (
    UNFINISHED_ROUND_STATUSES,
    Job,
    JobStatus,
    Project,
    Query,
    QueryStatus,
    Round,
    RoundStatus,
)
from core.models.base import utc_now

log = logging.getLogger(__name__)

ROUND_JOB_KIND = ROUND_JOB


def lock_project(session: Session, project_id: int) -> None:
    """Serializes round starts and retries of one project until the transaction ends.

    A no-op UPDATE takes the project row's lock on PostgreSQL and SQLite's write lock, so a
    second request waits here and then sees the first one's committed round (a SELECT alone
    would let both see "no round running" and both insert one).
    """
    session.execute(
        update(Project)
        .where(Project.id == project_id)
        .values(name=Project.name)
        .execution_options(synchronize_session=False)
    )


def ensure_no_unfinished_round(session: Session, project_id: int) -> None:
    """409 while a round of the project is pending, training, scoring, querying or labeling."""
    unfinished = session.scalar(
        select(Round)
        .where(Round.project_id == project_id, Round.status.in_(UNFINISHED_ROUND_STATUSES))
        .order_by(Round.number.desc())
        .limit(1)
    )
    if unfinished is None:
        return
    if unfinished.status == RoundStatus.pending:
        job_id = session.scalar(
            select(Job.id).where(Job.round_id == unfinished.id, Job.kind == ROUND_JOB_KIND)
        )
        raise Conflict(
            f"Round {unfinished.number} is still pending (waiting for a worker); if none "
            f"takes it, retry its job {job_id} (POST .../jobs/{job_id}/retry).",
        )
    raise Conflict(
        f"Round {unfinished.number} is still {unfinished.status.value}; close it first.",
    )


def create_round(session: Session, project: Project) -> tuple[Round, Job]:
    """A pending round and the job that will train, score and query for it.

    One round at a time per project: a round still pending, training, scoring, querying or
    labeling must be closed (or fail) before the next one starts. Race-free: the project row
    is locked first (``lock_project``).
    """
    lock_project(session, project.id)
    ensure_no_unfinished_round(session, project.id)
    last = session.scalar(select(func.max(Round.number)).where(Round.project_id == project.id))
    round_ = Round(
        project_id=project.id,
        number=(last or 0) + 1,
        strategy=project.strategy.value,
        status=RoundStatus.pending,
    )
    session.add(round_)
    session.flush()
    job = Job(
        project_id=project.id,
        round_id=round_.id,
        kind=ROUND_JOB_KIND,
        status=JobStatus.queued,
        progress=0.0,
        message=f"round {round_.number}: waiting for a worker",
    )
    session.add(job)
    session.flush()
    return round_, job


def mark_dispatch_failed(session: Session, round_: Round, job: Job, reason: str) -> None:
    mark_job_dispatch_failed(session, job, reason)
    round_.status = RoundStatus.failed
    round_.finished_at = job.finished_at


def close_round(session: Session, round_: Round) -> None:
    """Ends labeling: open leases are dropped and the round counts as complete."""
    if round_.status != RoundStatus.labeling:
        raise Conflict(
            f"Round {round_.number} is {round_.status.value}; only a labeling round can be closed.",
        )
    session.execute(
        update(Query)
        .where(Query.round_id == round_.id, Query.status == QueryStatus.assigned)
        .values(status=QueryStatus.open, assignee_id=None, lease_expires_at=None)
        .execution_options(synchronize_session=False)
    )
    round_.status = RoundStatus.complete
    round_.finished_at = utc_now()


def retry_job(session: Session, job: Job, *, stale_after: timedelta) -> None:
    """Puts a failed job back in the queue; a failed round goes back to ``pending`` and its
    worker resumes after the last step it finished (steps are idempotent).

    A job still queued ``stale_after`` after it was last sent (or committed, if it never was:
    the API died between the commit and the send) is only marked for sending again; a
    duplicate message is harmless, the job runs once. 409 for a job that is running, ended
    other than failed, or queued more recently, and when another round has started since.
    """
    if job.status == JobStatus.queued:
        waited = utc_now() - (job.dispatched_at or job.created_at)
        if waited < stale_after:
            raise Conflict(
                f"Job {job.id} was queued {waited.total_seconds():.0f} s ago and may still "
                f"reach a worker; it can be sent again once it has waited "
                f"{stale_after.total_seconds():.0f} s.",
            )
        job.message = "retry: sent again while queued"
        session.flush()
        return
    if job.status != JobStatus.failed:
        raise Conflict(
            f"Job {job.id} is {job.status.value}; only a failed job, or one left queued, "
            "can be retried.",
        )
    if job.round_id is not None and job.kind == ROUND_JOB_KIND:
        assert job.project_id is not None
        lock_project(session, job.project_id)
        round_ = session.get(Round, job.round_id)
        if round_ is not None and round_.status == RoundStatus.failed:
            ensure_no_unfinished_round(session, job.project_id)
            round_.status = RoundStatus.pending
            round_.finished_at = None
    job.status = JobStatus.queued
    job.error = None
    job.finished_at = None
    job.worker = None
    job.lease_expires_at = None
    job.takeovers = 0
    job.message = "retry: waiting for a worker"
    session.flush()


def create_oracle_job(session: Session, round_: Round) -> Job:
    """A job in which the worker answers the round's open queries from ground truth."""
    if round_.status != RoundStatus.labeling:
        raise Conflict(
            f"Round {round_.number} is {round_.status.value}; the oracle answers a labeling round.",
        )
    job = Job(
        project_id=round_.project_id,
        round_id=round_.id,
        kind=ORACLE_JOB,
        status=JobStatus.queued,
        progress=0.0,
        message=f"round {round_.number}: oracle waiting for a worker",
    )
    session.add(job)
    session.flush()
    return job


def mark_job_dispatch_failed(session: Session, job: Job, reason: str) -> None:
    log.error(
        "job %s could not be sent to the broker: %s",
        job.id,
        reason,
        extra={"failed_job_id": job.id, "reason": reason},
    )
    job.status = JobStatus.failed
    job.error = f"could not reach the task broker: {reason}"
    job.finished_at = utc_now()
