"""The jobs part: recent jobs, the newest round and what the lead may do next."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from backend.dashboard.schemas import CurrentRound, Jobs
from backend.rounds.schemas import JobRead
from core.models import (
    UNFINISHED_ROUND_STATUSES,
    Image,
    Job,
    Project,
    Query,
    QueryStatus,
    Round,
    RoundStatus,
)

RECENT_JOBS = 20


def jobs(session: Session, project: Project) -> Jobs:
    """Recent jobs, the newest round and what the lead may do next."""
    recent = session.scalars(
        select(Job).where(Job.project_id == project.id).order_by(Job.id.desc()).limit(RECENT_JOBS)
    )
    newest = session.scalar(
        select(Round).where(Round.project_id == project.id).order_by(Round.number.desc()).limit(1)
    )
    current = None
    oracle_available = False
    if newest is not None:
        counts = dict(
            session.execute(
                select(Query.status, func.count(Query.id))
                .where(Query.round_id == newest.id)
                .group_by(Query.status)
            ).all()
        )
        total = int(sum(counts.values()))
        done = int(counts.get(QueryStatus.done, 0))
        current = CurrentRound(
            id=newest.id,
            number=newest.number,
            status=newest.status,
            queries=total,
            queries_done=done,
        )
        if newest.status == RoundStatus.labeling:
            open_with_truth = session.scalar(
                select(func.count(Query.id))
                .join(Image, Image.id == Query.image_id)
                .where(
                    Query.round_id == newest.id,
                    Query.status != QueryStatus.done,
                    Image.ground_truth_png.is_not(None),
                )
            )
            oracle_available = bool(open_with_truth)
    unfinished = session.scalar(
        select(func.count(Round.id)).where(
            Round.project_id == project.id, Round.status.in_(UNFINISHED_ROUND_STATUSES)
        )
    )
    return Jobs(
        jobs=[JobRead.model_validate(job) for job in recent],
        current_round=current,
        can_start_round=not unfinished,
        oracle_available=oracle_available,
    )
