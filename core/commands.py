"""What every database-touching ``tessera`` command shares (the API's and the worker's): an
upgraded database, a session, and finding a project by id or name."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import click
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.db import make_engine, make_session_factory
from core.migrate import upgrade_database
from core.models import Project
from core.settings import Settings, get_settings


@contextmanager
def command_session(settings: Settings | None = None) -> Iterator[Session]:
    """A session on the configured database, upgraded to the current schema first."""
    settings = settings or get_settings()
    upgrade_database(settings)
    engine = make_engine(settings.resolved_database_url)
    try:
        with make_session_factory(engine)() as session:
            yield session
    finally:
        engine.dispose()


def find_project(session: Session, project: str) -> Project:
    """A project by id or by exact name."""
    found = session.get(Project, int(project)) if project.isdigit() else None
    if found is None:
        matches = list(session.scalars(select(Project).where(Project.name == project)))
        if len(matches) > 1:
            raise click.BadParameter(f"{len(matches)} projects are named {project!r}; use the id.")
        found = matches[0] if matches else None
    if found is None:
        raise click.BadParameter(f"No project {project!r}.", param_hint="--project")
    return found
