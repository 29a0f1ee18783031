"""API logs: every answer carries a request id (the client's X-Request-ID, or a new one),
and the request's log lines carry it too, as JSON lines."""

from __future__ import annotations

import json
import logging

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from backend.app import create_app
from core.errors import Conflict
from core.logs import JsonFormatter
from core.settings import Settings
from tests.backend.builders import World


@pytest.fixture
def bare_app() -> FastAPI:
    app = create_app(Settings(database_url="sqlite://"))

    @app.get("/refuse")
    def refuse() -> None:
        raise Conflict("Round 2 is still training; close it first.")

    return app


def _access(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "tessera.access"]


def test_request_id_is_echoed_and_carried_by_the_access_log(
    bare_app: FastAPI, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    answer = TestClient(bare_app).get("/api/v1/health", headers={"X-Request-ID": "req-7f3a"})
    assert answer.status_code == 200
    assert answer.headers["X-Request-ID"] == "req-7f3a"
    [record] = _access(caplog)
    assert record.request_id == "req-7f3a"  # type: ignore[attr-defined]
    line = json.loads(JsonFormatter().format(record))
    assert line["request_id"] == "req-7f3a"
    assert (line["method"], line["path"], line["status"]) == ("GET", "/api/v1/health", 200)
    assert line["level"] == "INFO" and line["duration_ms"] >= 0.0
    assert line.get("job_id") is None


def test_a_request_without_an_id_gets_a_fresh_one_each_time(
    bare_app: FastAPI, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    client = TestClient(bare_app)
    # An id that would garble a log line or a header is replaced, not echoed.
    ids = [
        client.get("/api/v1/health").headers["X-Request-ID"],
        client.get("/api/v1/health", headers={"X-Request-ID": "x" * 500}).headers["X-Request-ID"],
    ]
    assert len(set(ids)) == 2 and all(len(i) == 32 for i in ids)
    assert [r.request_id for r in _access(caplog)] == ids  # type: ignore[attr-defined]


def test_a_refusal_is_logged_with_its_reason_under_the_request_id(
    bare_app: FastAPI, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    answer = TestClient(bare_app).get("/refuse", headers={"X-Request-ID": "r-409"})
    assert answer.status_code == 409
    assert answer.headers["X-Request-ID"] == "r-409"
    tessera = [r for r in caplog.records if r.name.startswith("tessera.")]
    lines = [json.loads(JsonFormatter().format(r)) for r in tessera]
    refused = [line for line in lines if line["logger"] == "tessera.api"]
    assert len(refused) == 1
    assert refused[0]["request_id"] == "r-409" and refused[0]["status"] == 409
    assert "still training" in refused[0]["message"]
    access = [line for line in lines if line["logger"] == "tessera.access"]
    assert [(a["status"], a["request_id"]) for a in access] == [(409, "r-409")]
    assert all(line["request_id"] == "r-409" for line in lines)


def test_a_login_lockout_is_logged_without_the_email(
    client: TestClient, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    email = "guesser-target@example.org"
    statuses = [
        client.post(
            "/api/v1/auth/login",
            json={"email": email, "password": f"guess-{n}"},
            headers={"X-Request-ID": f"guess-{n}"},
        ).status_code
        for n in range(settings.login_max_failures + 1)
    ]
    assert statuses[-1] == 429 and 429 not in statuses[:-2]
    locked = [r for r in caplog.records if r.name == "backend.auth.throttle"]
    assert locked and all(r.levelno == logging.WARNING for r in locked)
    first = statuses.index(429)
    assert locked[0].request_id == f"guess-{first}"  # type: ignore[attr-defined]
    assert all(email not in JsonFormatter().format(r) for r in locked)


def test_a_job_the_broker_cannot_take_is_logged_as_an_error(
    app: FastAPI, client: TestClient, world: World, caplog: pytest.LogCaptureFixture
) -> None:
    lead = world.user("lead@example.org")
    project = world.project(lead)
    app.state.settings = app.state.settings.model_copy(
        update={"broker_url": "redis://127.0.0.1:1/0"}
    )
    caplog.set_level(logging.INFO)
    response = client.post(
        f"/api/v1/projects/{project}/rounds",
        headers={**lead.headers, "X-Request-ID": "round-start-1"},
    )
    assert response.status_code == 503
    [job] = client.get(f"/api/v1/projects/{project}/jobs", headers=lead.headers).json()
    [failed] = [r for r in caplog.records if r.name == "backend.rounds.service"]
    assert failed.levelno == logging.ERROR
    line = json.loads(JsonFormatter().format(failed))
    assert (line["failed_job_id"], line["request_id"]) == (job["id"], "round-start-1")
    assert "could not be sent to the broker" in line["message"]
