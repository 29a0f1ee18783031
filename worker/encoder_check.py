"""At worker start: every pretrained encoder a project needs loads here, or the worker does
not start (a clear error now instead of a failed round later)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import select

from core.db import make_engine, make_session_factory
from core.models import ModelArchitecture, Project
from core.settings import Settings
from worker.checkpoints import check_encoder_weights
from worker.engine.model import ModelConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EncoderProblem:
    """A project (None: the default every new project gets) whose encoder weights fail."""

    project: str | None
    error: str

    def __str__(self) -> str:
        who = self.project or "the default EfficientNet-Lite0 weights (new projects)"
        return f"{who}: {self.error}"


def encoder_problems(settings: Settings) -> list[EncoderProblem]:
    """Loads, with ``weights_only=True``, the shipped EfficientNet-Lite0 weights and every
    weights file a project names; returns what failed."""
    needed: dict[tuple[str, str | None], list[str]] = {
        (ModelArchitecture.efficientnet_lite0.value, None): []
    }
    engine = make_engine(settings.resolved_database_url)
    try:
        with make_session_factory(engine)() as session:
            projects = session.scalars(
                select(Project)
                .where(Project.model_architecture != ModelArchitecture.unet)
                .order_by(Project.id)
            )
            for project in projects:
                key = (project.model_architecture.value, project.encoder_weights_path or None)
                needed.setdefault(key, []).append(f"project {project.id} {project.name!r}")
    finally:
        engine.dispose()
    problems = []
    for (kind, path), users in needed.items():
        try:
            check_encoder_weights(ModelConfig(num_classes=2, kind=kind, encoder_weights=path))
        except ValueError as error:
            problems.append(EncoderProblem(", ".join(users) or None, str(error)))
        else:
            log.info("encoder %s weights %s load", kind, path or "(shipped with its package)")
    return problems
