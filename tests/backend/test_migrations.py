"""Alembic upgrade from empty, downgrade to empty, upgrade again; schema matches the models."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from backend.migrate import downgrade_database, upgrade_database
from backend.models import Base
from backend.settings import Settings
from tests.services import postgres_database


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'fresh.db'}"
        return
    with postgres_database("tessera_migrate") as url:
        yield url


def _tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        return set(inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


def test_upgrade_downgrade_upgrade(empty_database: str, tmp_path: Path) -> None:
    settings = Settings(database_url=empty_database, data_dir=tmp_path)
    upgrade_database(settings)
    assert _tables(empty_database) == set(Base.metadata.tables)
    downgrade_database(settings, "base")
    assert _tables(empty_database) == set()
    upgrade_database(settings)
    assert _tables(empty_database) == set(Base.metadata.tables)
    engine = create_engine(empty_database)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            assert compare_metadata(context, Base.metadata) == []
    finally:
        engine.dispose()
