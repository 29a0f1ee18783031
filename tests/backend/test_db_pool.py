"""PostgreSQL connections the server closed are replaced at checkout, without a ping per
request (``core.db``): after every backend of the API's pool is killed, the next requests
still answer."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, text

from tests.backend.builders import World

pytestmark = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)


def _kill_other_backends(url: str) -> int:
    """Terminates every other connection to this database; how many there were."""
    admin: Engine = create_engine(url)
    try:
        with admin.connect() as connection:
            killed = connection.execute(
                text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            ).scalar_one()
    finally:
        admin.dispose()
    return int(killed)


def _backend_pids(engine: Engine) -> set[int]:
    with engine.connect() as connection:
        return {int(connection.execute(text("SELECT pg_backend_pid()")).scalar_one())}


def test_requests_after_the_pools_connections_are_killed_succeed(
    client: TestClient, world: World
) -> None:
    lead = world.user("lead@example.org")
    project = world.project(lead)
    url = f"/api/v1/projects/{project}"
    assert client.get(url, headers=lead.headers).status_code == 200
    engine: Engine = client.app.state.engine  # type: ignore[attr-defined]
    before = _backend_pids(engine)

    assert _kill_other_backends(engine.url.render_as_string(hide_password=False)) >= 1
    time.sleep(0.2)  # the FATAL message and hang-up reach the pooled sockets

    for _ in range(3):
        response = client.get(url, headers=lead.headers)
        assert response.status_code == 200, response.text
        assert response.json()["id"] == project
    assert _backend_pids(engine).isdisjoint(before)  # a new connection, not the killed one
