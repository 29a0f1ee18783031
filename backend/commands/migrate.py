"""``tessera migrate``: bring the database schema to the latest revision, then exit."""

from __future__ import annotations

import click

from core.migrate import upgrade_database
from core.settings import get_settings


@click.command()
def migrate() -> None:
    """Upgrade the database to the latest schema (a one-shot step before the API starts)."""
    settings = get_settings()
    upgrade_database(settings)
    click.echo(f"database at {settings.resolved_database_url.split('@')[-1]} is up to date")
