"""Rounds (start, close, list, detail), jobs and trained models.

Starting a round only creates its rows and hands the job id to the worker; the worker moves
the round through training, scoring and labeling and reports progress on the job.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, status
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from backend.deps import SessionDep, SettingsDep
from backend.projects.deps import ProjectLead, ProjectMember
from backend.rounds import service
from backend.rounds.schemas import (
    JobRead,
    ModelRead,
    QueryRead,
    RoundDetail,
    RoundRead,
    RoundStarted,
)
from backend.validation_types import Id
from core.dispatch import BrokerUnavailable, send_job
from core.models import Job, JobStatus, ModelCheckpoint, Round
from core.models import Query as QueryRow

router = APIRouter(prefix="/projects/{project_id}")


@router.get("/rounds", response_model=list[RoundRead], tags=["rounds"])
def list_rounds(access: ProjectMember, session: SessionDep) -> list[Round]:
    return list(
        session.scalars(
            select(Round).where(Round.project_id == access.project.id).order_by(Round.number)
        )
    )


@router.post(
    "/rounds",
    response_model=RoundStarted,
    status_code=status.HTTP_202_ACCEPTED,
    tags=["rounds"],
    responses={
        409: {"description": "Another round is still running or labeling"},
        503: {"description": "The task broker is unreachable; the job is marked failed"},
    },
)
def start_round(access: ProjectLead, session: SessionDep, settings: SettingsDep) -> RoundStarted:
    """Starts the next round with the project's current settings (train, score, query).

    Answers at once; follow the returned job at ``GET .../jobs/{job_id}``.
    """
    try:
        round_, job = service.create_round(session, access.project)
        session.commit()
    except IntegrityError as error:  # a concurrent start took the same round number
        session.rollback()
        raise HTTPException(
            status.HTTP_409_CONFLICT, "Another round was started at the same time."
        ) from error
    try:
        send_job(settings, job)
    except BrokerUnavailable as error:
        service.mark_dispatch_failed(session, round_, job, str(error))
        session.commit()
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            f"Round {round_.number} could not be handed to a worker ({error}); "
            "check TESSERA_BROKER_URL and start it again.",
        ) from error
    session.commit()
    return RoundStarted(round=RoundRead.model_validate(round_), job=JobRead.model_validate(job))


def _get_round(session: SessionDep, project_id: int, round_id: int) -> Round:
    round_ = session.get(Round, round_id)
    if round_ is None or round_.project_id != project_id:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"No round {round_id} in this project.")
    return round_


@router.post("/rounds/{round_id}/close", response_model=RoundRead, tags=["rounds"])
def close_round(round_id: Id, access: ProjectLead, session: SessionDep) -> Round:
    """Ends a round's labeling (also with queries left undone) so the next can start."""
    round_ = _get_round(session, access.project.id, round_id)
    service.close_round(session, round_)
    session.commit()
    return round_


@router.get("/rounds/{round_id}", response_model=RoundDetail, tags=["rounds"])
def round_detail(round_id: Id, access: ProjectMember, session: SessionDep) -> RoundDetail:
    """A round with its queries (which images, which superpixels) and its models."""
    round_ = _get_round(session, access.project.id, round_id)
    queries = session.scalars(
        select(QueryRow).where(QueryRow.round_id == round_.id).order_by(QueryRow.id)
    )
    model_ids = session.scalars(
        select(ModelCheckpoint.id).where(ModelCheckpoint.round_id == round_.id)
    )
    return RoundDetail(
        **RoundRead.model_validate(round_).model_dump(),
        queries=[QueryRead.model_validate(query) for query in queries],
        model_ids=list(model_ids),
    )


@router.get("/jobs", response_model=list[JobRead], tags=["jobs"])
def list_jobs(
    access: ProjectMember,
    session: SessionDep,
    job_status: Annotated[JobStatus | None, Query(alias="status")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[Job]:
    """The project's background jobs, newest first."""
    query = select(Job).where(Job.project_id == access.project.id)
    if job_status is not None:
        query = query.where(Job.status == job_status)
    return list(session.scalars(query.order_by(Job.id.desc()).limit(limit)))


def _get_job(session: SessionDep, project_id: int, job_id: int) -> Job:
    job = session.get(Job, job_id)
    if job is None or job.project_id != project_id:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"No job {job_id} in this project.")
    return job


@router.get("/jobs/{job_id}", response_model=JobRead, tags=["jobs"])
def job_detail(job_id: Id, access: ProjectMember, session: SessionDep) -> Job:
    """A job's status, progress (0..1), ETA, message and, when it failed, its error."""
    return _get_job(session, access.project.id, job_id)


def _dispatch(session: SessionDep, settings: SettingsDep, job: Job) -> None:
    """Sends a committed job; an unreachable broker fails it visibly (503)."""
    try:
        send_job(settings, job)
    except BrokerUnavailable as error:
        service.mark_job_dispatch_failed(session, job, str(error))
        session.commit()
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            f"Job {job.id} could not be handed to a worker ({error}); check "
            "TESSERA_BROKER_URL and retry it.",
        ) from error
    session.commit()


@router.post(
    "/jobs/{job_id}/retry",
    response_model=JobRead,
    status_code=status.HTTP_202_ACCEPTED,
    tags=["jobs"],
    responses={
        409: {
            "description": "The job is running, ended other than failed, or was queued less "
            "than a lease ago; or another round has started since"
        },
        503: {"description": "The task broker is unreachable"},
    },
)
def retry_job(job_id: Id, access: ProjectLead, session: SessionDep, settings: SettingsDep) -> Job:
    """Runs a failed job again (a round resumes after its last finished step), or sends a
    job again that has waited in the queue for longer than a lease (``TESSERA_JOB_LEASE_SECONDS``),
    e.g. a round left ``pending`` because the API stopped before handing it to the broker."""
    job = _get_job(session, access.project.id, job_id)
    service.retry_job(session, job, stale_after=timedelta(seconds=settings.job_lease_seconds))
    session.commit()
    _dispatch(session, settings, job)
    return job


class OracleRequest(BaseModel):
    mode: Literal["exact", "dominant"] = "exact"


@router.post(
    "/rounds/{round_id}/oracle",
    response_model=JobRead,
    status_code=status.HTTP_202_ACCEPTED,
    tags=["rounds"],
    responses={
        409: {"description": "The round is not collecting labels"},
        503: {"description": "The task broker is unreachable"},
    },
)
def answer_with_oracle(
    round_id: Id,
    access: ProjectLead,
    session: SessionDep,
    settings: SettingsDep,
    body: OracleRequest | None = None,
) -> Job:
    """Lets the oracle answer the round's open queries from the images' ground truth
    (``exact``: the true pixels; ``dominant``: each superpixel's majority class), saved
    like a person's work under the oracle account. Images without ground truth stay open."""
    round_ = _get_round(session, access.project.id, round_id)
    job = service.create_oracle_job(session, round_)
    job.payload = {"mode": (body or OracleRequest()).mode}
    session.commit()
    _dispatch(session, settings, job)
    return job


@router.get("/models", response_model=list[ModelRead], tags=["models"])
def list_models(access: ProjectMember, session: SessionDep) -> list[ModelCheckpoint]:
    """Trained models with their metrics (checkpoint bytes stay in the database)."""
    return list(
        session.scalars(
            select(ModelCheckpoint)
            .where(ModelCheckpoint.project_id == access.project.id)
            .order_by(ModelCheckpoint.id)
        )
    )
