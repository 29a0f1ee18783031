"""The lead dashboard: every part at once, each computed from the rows it summarizes.

Read-only and cheap to poll: no part writes, and none decodes an image (class balance sums
the per-class counts saves keep up to date, ``core.class_counts``). One module per part:
``budget``, ``learning_curve`` (with uploaded simulations), ``rounds_table``,
``class_balance``, ``team``, ``jobs``, ``prefill``; ``simulations`` checks and stores
uploads.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from backend.dashboard.budget import budget
from backend.dashboard.class_balance import class_balance
from backend.dashboard.jobs import jobs
from backend.dashboard.learning_curve import learning_curve
from backend.dashboard.prefill import prefill_effort
from backend.dashboard.rounds_table import rounds
from backend.dashboard.schemas import Dashboard
from backend.dashboard.team import team
from core.models import Project


def dashboard(session: Session, project: Project) -> Dashboard:
    return Dashboard(
        budget=budget(session, project),
        learning_curve=learning_curve(session, project),
        rounds=rounds(session, project),
        class_balance=class_balance(session, project),
        team=team(session, project),
        jobs=jobs(session, project),
        prefill=prefill_effort(session, project.id),
    )
