"""Schema upgrades through Alembic, callable from code (``tessera serve``, tests)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from alembic import command
from alembic.config import Config

from core.settings import Settings


def migrations_dir() -> Path:
    """The ``migrations`` package's folder: the checkout's, or the installed wheel's."""
    spec = importlib.util.find_spec("migrations")
    if spec is None or spec.origin is None:
        raise RuntimeError("the 'migrations' package is not installed with Tessera")
    return Path(spec.origin).resolve().parent


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    # ConfigParser interpolation would choke on '%' in passwords.
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade_database(settings: Settings, revision: str = "head") -> None:
    """Bring the database at ``settings``' URL to ``revision`` (creates it when empty)."""
    command.upgrade(alembic_config(settings.resolved_database_url), revision)


def downgrade_database(settings: Settings, revision: str) -> None:
    command.downgrade(alembic_config(settings.resolved_database_url), revision)
