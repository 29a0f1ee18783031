"""Fixtures: every backend test runs on real PostgreSQL and on SQLite, migrated by Alembic.

Each database is created and migrated once per test session; each test starts from empty
tables (truncated), so tests can commit, use threads and see each other's writes.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from backend.app import create_app
from core.migrate import upgrade_database
from core.models import Base
from core.settings import Settings
from tests.backend.builders import World
from tests.services import postgres_database

REDIS_URL = "redis://127.0.0.1:6379/15"
# A queue of our own on the real Redis, so round jobs sent by tests reach no real worker.
TEST_TASK_QUEUE = f"tessera-test-{uuid.uuid4().hex[:12]}"


def small_limits(database_url: str, data_dir: Path) -> Settings:
    """Production defaults scaled down so that crafted oversized files stay small."""
    return Settings(
        database_url=database_url,
        data_dir=data_dir,
        secret_key="test",
        broker_url=REDIS_URL,
        task_queue=TEST_TASK_QUEUE,
        max_upload_bytes=2 * 1024 * 1024,
        max_request_bytes=32 * 1024 * 1024,
        max_image_pixels=2_000_000,
        max_zip_entries=20,
        max_zip_uncompressed_bytes=8 * 1024 * 1024,
        task_lease_seconds=600,
    )


@pytest.fixture(scope="session")
def task_queue() -> Iterator[redis.Redis]:
    """The Redis list Celery sends test round jobs to; deleted when the session ends."""
    client = redis.Redis.from_url(REDIS_URL)
    yield client
    client.delete(TEST_TASK_QUEUE)
    client.close()


@pytest.fixture(scope="session")
def postgres_database_url() -> Iterator[str]:
    with postgres_database("tessera_test") as url:
        yield url


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'tessera.db'}"
    url: str = request.getfixturevalue("postgres_database_url")
    return url


@pytest.fixture(scope="session")
def migrated_app(
    database_url: str, tmp_path_factory: pytest.TempPathFactory, task_queue: redis.Redis
) -> Iterator[FastAPI]:
    settings = small_limits(database_url, tmp_path_factory.mktemp("data"))
    upgrade_database(settings)
    app = create_app(settings)
    yield app
    app.state.engine.dispose()


def _truncate(engine: Engine) -> None:
    tables = [table.name for table in reversed(Base.metadata.sorted_tables)]
    # DELETE beats TRUNCATE on a handful of rows; ids restart so tests can name them.
    with engine.begin() as connection:
        for name in tables:
            connection.execute(text(f'DELETE FROM "{name}"'))
        if engine.dialect.name == "postgresql":
            for name in tables:
                connection.execute(
                    text(
                        f"SELECT setval(pg_get_serial_sequence('\"{name}\"', column_name), 1, "
                        "false) FROM information_schema.columns WHERE table_name = :t "
                        "AND column_default LIKE 'nextval%'"
                    ),
                    {"t": name},
                )


@pytest.fixture
def app(migrated_app: FastAPI) -> Iterator[FastAPI]:
    _truncate(migrated_app.state.engine)
    settings = migrated_app.state.settings
    yield migrated_app
    migrated_app.state.settings = settings  # undo per-test overrides


@pytest.fixture
def settings(app: FastAPI) -> Settings:
    value: Settings = app.state.settings
    return value


@pytest.fixture
def session_factory(app: FastAPI) -> sessionmaker[Session]:
    factory: sessionmaker[Session] = app.state.session_factory
    return factory


@pytest.fixture
def client(app: FastAPI) -> TestClient:
    return TestClient(app)


@pytest.fixture
def world(session_factory: sessionmaker[Session], settings: Settings) -> World:
    return World(session_factory, settings)
