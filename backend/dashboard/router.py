"""The lead dashboard: budget, learning curve, rounds, class balance, team and jobs.

``GET .../dashboard`` returns every part at once (what the page polls); each part also has
its own route. Leads only: annotators get 403, non-members 404.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, HTTPException, UploadFile, status

from backend.dashboard import simulations
from backend.dashboard.budget import budget
from backend.dashboard.class_balance import class_balance
from backend.dashboard.jobs import jobs
from backend.dashboard.learning_curve import learning_curve
from backend.dashboard.rounds_table import rounds
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
from backend.dashboard.service import dashboard
from backend.dashboard.team import team
from backend.deps import SessionDep, SettingsDep
from backend.projects.deps import ProjectLead
from backend.validation_types import Id

router = APIRouter(prefix="/projects/{project_id}/dashboard", tags=["dashboard"])


@router.get("", response_model=Dashboard)
def read_dashboard(access: ProjectLead, session: SessionDep) -> Dashboard:
    """Every figure of the dashboard in one response."""
    return dashboard(session, access.project)


@router.get("/budget", response_model=Budget)
def read_budget(access: ProjectLead, session: SessionDep) -> Budget:
    """Set, spent and remaining in pixels, superpixels, images and hours, with a warning
    level (75 % warning, 90 % critical, 100 % exhausted)."""
    return budget(session, access.project)


@router.get("/learning-curve", response_model=LearningCurve)
def read_learning_curve(access: ProjectLead, session: SessionDep) -> LearningCurve:
    """Validation mIoU per round against cumulative labeled pixels; the projection at the
    full budget (least squares of mIoU = a + b·ln(pixels)); uploaded simulation curves."""
    return learning_curve(session, access.project)


@router.get("/rounds", response_model=list[RoundRow])
def read_rounds(access: ProjectLead, session: SessionDep) -> list[RoundRow]:
    """Per round: images and superpixels queried (per image), pixels, time, model metrics."""
    return rounds(session, access.project)


@router.get("/class-balance", response_model=ClassBalance)
def read_class_balance(access: ProjectLead, session: SessionDep) -> ClassBalance:
    """Labeled pixel share per class against the validation ground truth's share."""
    return class_balance(session, access.project)


@router.get("/team", response_model=list[TeamMember])
def read_team(access: ProjectLead, session: SessionDep) -> list[TeamMember]:
    """Per person: saves, superpixels, pixels, hours, throughput, refused (412) saves."""
    return team(session, access.project)


@router.get("/jobs", response_model=Jobs)
def read_jobs(access: ProjectLead, session: SessionDep) -> Jobs:
    """Recent jobs with progress and ETA, the newest round, and whether a round may start."""
    return jobs(session, access.project)


@router.get("/simulations", response_model=list[SimulationRead])
def list_simulations(access: ProjectLead, session: SessionDep) -> list[SimulationRead]:
    return [
        simulations.summary(result)
        for result in simulations.project_simulations(session, access.project.id)
    ]


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
    result = simulations.store_simulation(
        session,
        access.project.id,
        access.user.id,
        name or file.filename or "simulation",
        data,
    )
    session.commit()
    return simulations.summary(result)


@router.delete("/simulations/{simulation_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_simulation(simulation_id: Id, access: ProjectLead, session: SessionDep) -> None:
    simulations.delete_simulation(session, access.project.id, simulation_id)
    session.commit()
