"""Starting rounds hands a job id to the worker through the real broker; closing ends labeling."""

from __future__ import annotations

import base64
import json

import pytest
import redis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from core.dispatch import RUN_ROUND_TASK
from core.models import Query, QueryStatus, Round, RoundStatus
from core.models.base import utc_now
from tests.backend.builders import Account, World
from tests.backend.conftest import TEST_TASK_QUEUE


@pytest.fixture
def lead_project(world: World) -> tuple[Account, int]:
    lead = world.user("lead@example.org")
    return lead, world.project(lead)


def _messages(task_queue: redis.Redis) -> list[dict[str, object]]:
    return [json.loads(raw) for raw in task_queue.lrange(TEST_TASK_QUEUE, 0, -1)]


def test_start_round_commits_rows_then_sends_the_job_id(
    client: TestClient, lead_project: tuple[Account, int], task_queue: redis.Redis
) -> None:
    task_queue.delete(TEST_TASK_QUEUE)
    lead, project = lead_project
    response = client.post(f"/api/v1/projects/{project}/rounds", headers=lead.headers)
    assert response.status_code == 202, response.text
    body = response.json()
    assert (body["round"]["number"], body["round"]["status"]) == (1, "pending")
    assert body["round"]["strategy"] == "dynamic"
    job = body["job"]
    assert (job["status"], job["kind"], job["round_id"]) == ("queued", "round", body["round"]["id"])
    [message] = _messages(task_queue)
    headers = message["headers"]
    assert isinstance(headers, dict)
    assert headers["task"] == RUN_ROUND_TASK
    assert headers["id"] == job["celery_task_id"]
    args, _kwargs, _embed = json.loads(base64.b64decode(str(message["body"])))
    assert args == [job["id"]]
    detail = client.get(f"/api/v1/projects/{project}/jobs/{job['id']}", headers=lead.headers)
    assert detail.json()["celery_task_id"] == job["celery_task_id"]
    task_queue.delete(TEST_TASK_QUEUE)


def test_one_round_at_a_time(
    client: TestClient,
    lead_project: tuple[Account, int],
    session_factory: sessionmaker[Session],
    world: World,
) -> None:
    lead, project = lead_project
    url = f"/api/v1/projects/{project}/rounds"
    first = client.post(url, headers=lead.headers).json()["round"]
    again = client.post(url, headers=lead.headers)
    assert again.status_code == 409
    assert "Round 1 is still pending" in again.json()["detail"]
    close = client.post(f"{url}/{first['id']}/close", headers=lead.headers)
    assert close.status_code == 409
    # The worker would move it to labeling and create queries; do that here.
    image = world.image(project)
    world.superpixel_grid(image)
    query = world.query(first["id"], image, [0])
    with session_factory() as session:
        session.execute(
            update(Round).where(Round.id == first["id"]).values(status=RoundStatus.labeling)
        )
        session.execute(
            update(Query)
            .where(Query.id == query)
            .values(status=QueryStatus.assigned, assignee_id=lead.id, lease_expires_at=utc_now())
        )
        session.commit()
    closed = client.post(f"{url}/{first['id']}/close", headers=lead.headers)
    assert closed.status_code == 200
    assert closed.json()["status"] == "complete"
    detail = client.get(f"{url}/{first['id']}", headers=lead.headers).json()
    assert [(q["image_id"], q["status"], q["assignee_id"]) for q in detail["queries"]] == [
        (image, "open", None)
    ]
    second = client.post(url, headers=lead.headers)
    assert second.status_code == 202
    assert second.json()["round"]["number"] == 2
    listed = client.get(url, headers=lead.headers).json()
    assert [(r["number"], r["status"]) for r in listed] == [(1, "complete"), (2, "pending")]


def test_unreachable_broker_fails_the_job_visibly(
    app: FastAPI, client: TestClient, lead_project: tuple[Account, int]
) -> None:
    lead, project = lead_project
    app.state.settings = app.state.settings.model_copy(
        update={"broker_url": "redis://127.0.0.1:1/0"}
    )
    response = client.post(f"/api/v1/projects/{project}/rounds", headers=lead.headers)
    assert response.status_code == 503
    assert "could not be handed to a worker" in response.json()["detail"]
    [job] = client.get(f"/api/v1/projects/{project}/jobs", headers=lead.headers).json()
    assert job["status"] == "failed"
    assert "could not reach the task broker" in job["error"]
    [round_] = client.get(f"/api/v1/projects/{project}/rounds", headers=lead.headers).json()
    assert round_["status"] == "failed"
