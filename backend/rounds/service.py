"""Starting and closing active-learning rounds. Functions flush; the request commits."""

from __future__ import annotations

from fastapi import HTTPException, status
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from backend.models import Job, JobStatus, Project, Query, QueryStatus, Round, RoundStatus
from backend.models.base import utc_now

ROUND_JOB_KIND = "round"
_UNFINISHED = (RoundStatus.pending, RoundStatus.training, RoundStatus.scoring, RoundStatus.labeling)


def create_round(session: Session, project: Project) -> tuple[Round, Job]:
    """A pending round and the job that will train, score and query for it.

    One round at a time per project: a round still pending, training, scoring or labeling
    must be closed (or fail) before the next one starts.
    """
    unfinished = session.scalar(
        select(Round)
        .where(Round.project_id == project.id, Round.status.in_(_UNFINISHED))
        .order_by(Round.number.desc())
        .limit(1)
    )
    if unfinished is not None:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            f"Round {unfinished.number} is still {unfinished.status.value}; close it first.",
        )
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
    now = utc_now()
    job.status = JobStatus.failed
    job.error = f"could not reach the task broker: {reason}"
    job.finished_at = now
    round_.status = RoundStatus.failed
    round_.finished_at = now


def close_round(session: Session, round_: Round) -> None:
    """Ends labeling: open leases are dropped and the round counts as complete."""
    if round_.status != RoundStatus.labeling:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
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
