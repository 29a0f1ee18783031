"""The lead dashboard: budget, learning curve, rounds, class balance, team and jobs.

``GET .../dashboard`` returns every part at once (what the page polls); each part also has
its own route. Leads only: annotators get 403, non-members 404.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, TypeVar

from fastapi import APIRouter, File, Form, HTTPException, UploadFile, status
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from backend.dashboard import service
from backend.dashboard.schemas import (
    Budget,
    ClassBalance,
    Dashboard,
    Jobs,
    LearningCurve,
    RoundRow,
    SimulationRead,
    TeamMember,
)
from backend.deps import SessionDep, SettingsDep
from backend.projects.deps import ProjectLead
from backend.validation_types import Id
from core.models import SimulationResult

router = APIRouter(prefix="/projects/{project_id}/dashboard", tags=["dashboard"])

T = TypeVar("T")


def _committing(session: Session, compute: Callable[[], T]) -> T:
    """Runs a computation that fills the class-count cache, and commits it. Two requests
    caching the same mask at once: the loser's insert fails, so it computes again from the
    winner's rows."""
    try:
        result = compute()
        session.commit()
    except IntegrityError:
        session.rollback()
        result = compute()
        session.commit()
    return result


@router.get("", response_model=Dashboard)
def read_dashboard(access: ProjectLead, session: SessionDep) -> Dashboard:
    """Every figure of the dashboard in one response."""
    return _committing(session, lambda: service.dashboard(session, access.project))


@router.get("/budget", response_model=Budget)
def read_budget(access: ProjectLead, session: SessionDep) -> Budget:
    """Set, spent and remaining in pixels, superpixels, images and hours, with a warning
    level (75 % warning, 90 % critical, 100 % exhausted)."""
    return service.budget(session, access.project)


@router.get("/learning-curve", response_model=LearningCurve)
def read_learning_curve(access: ProjectLead, session: SessionDep) -> LearningCurve:
    """Validation mIoU per round against cumulative labeled pixels; the projection at the
    full budget (least squares of mIoU = a + b·ln(pixels)); uploaded simulation curves."""
    return service.learning_curve(session, access.project)


@router.get("/rounds", response_model=list[RoundRow])
def read_rounds(access: ProjectLead, session: SessionDep) -> list[RoundRow]:
    """Per round: images and superpixels queried (per image), pixels, time, model metrics."""
    return service.rounds(session, access.project)


@router.get("/class-balance", response_model=ClassBalance)
def read_class_balance(access: ProjectLead, session: SessionDep) -> ClassBalance:
    """Labeled pixel share per class against the validation ground truth's share."""
    return _committing(session, lambda: service.class_balance(session, access.project))


@router.get("/team", response_model=list[TeamMember])
def read_team(access: ProjectLead, session: SessionDep) -> list[TeamMember]:
    """Per person: saves, superpixels, pixels, hours, throughput, refused (412) saves."""
    return service.team(session, access.project)


@router.get("/jobs", response_model=Jobs)
def read_jobs(access: ProjectLead, session: SessionDep) -> Jobs:
    """Recent jobs with progress and ETA, the newest round, and whether a round may start."""
    return service.jobs(session, access.project)


def _summary(result: SimulationResult) -> SimulationRead:
    return SimulationRead(
        id=result.id,
        name=result.name,
        created_at=result.created_at,
        rows=len(result.rows),
        strategies=sorted({str(row["strategy"]) for row in result.rows}),
    )


@router.get("/simulations", response_model=list[SimulationRead])
def list_simulations(access: ProjectLead, session: SessionDep) -> list[SimulationRead]:
    results = session.scalars(
        select(SimulationResult)
        .where(SimulationResult.project_id == access.project.id)
        .order_by(SimulationResult.id)
    )
    return [_summary(result) for result in results]


@router.post(
    "/simulations",
    response_model=SimulationRead,
    status_code=status.HTTP_201_CREATED,
    responses={
        413: {"description": "Larger than TESSERA_MAX_UPLOAD_BYTES"},
        422: {"description": "Not a rounds.jsonl of `tessera simulate`"},
    },
)
def upload_simulation(
    file: Annotated[UploadFile, File(description="rounds.jsonl written by `tessera simulate`")],
    access: ProjectLead,
    session: SessionDep,
    settings: SettingsDep,
    name: Annotated[str, Form(max_length=200)] = "",
) -> SimulationRead:
    """Stores a simulation's rows; the learning curve then shows each strategy's mean
    mIoU over seeds against its labeled pixel fraction (scaled to this project's pool)."""
    data = file.file.read(settings.max_upload_bytes + 1)
    if len(data) > settings.max_upload_bytes:
        raise HTTPException(
            status.HTTP_413_CONTENT_TOO_LARGE,
            f"{file.filename} exceeds {settings.max_upload_bytes} bytes "
            "(TESSERA_MAX_UPLOAD_BYTES).",
        )
    rows = service.parse_simulation_rows(data)
    result = SimulationResult(
        project_id=access.project.id,
        name=name or file.filename or "simulation",
        uploaded_by_id=access.user.id,
        rows=rows,
    )
    session.add(result)
    session.commit()
    return _summary(result)


@router.delete("/simulations/{simulation_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_simulation(simulation_id: Id, access: ProjectLead, session: SessionDep) -> None:
    result = session.get(SimulationResult, simulation_id)
    if result is None or result.project_id != access.project.id:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, f"No simulation {simulation_id} in this project."
        )
    session.delete(result)
    session.commit()
