"""Two leads starting a round at the same instant: exactly one gets it, the other a 409."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.worker.conftest import Api, Stack


def start_twice_at_once(api: Api, project: int) -> list[int]:
    """Status codes of two round starts released together from two threads."""
    barrier = threading.Barrier(2)
    statuses: list[int] = []

    def start(client: TestClient) -> None:
        barrier.wait()
        response = client.post(f"/api/v1/projects/{project}/rounds", headers=api.headers)
        statuses.append(response.status_code)

    threads = [threading.Thread(target=start, args=(TestClient(api.client.app),)) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sorted(statuses)


@pytest.mark.parametrize("database", ["postgresql", "sqlite"])
def test_concurrent_round_starts_get_one_202_and_one_409(
    make_stack: Any, make_api: Any, database: str
) -> None:
    # No worker: the embedded broker just keeps the messages.
    stack: Stack = make_stack(database, "embedded")
    api: Api = make_api(stack)
    for attempt in range(5):
        project = api.post("/projects", expect=201, json={"name": f"race {attempt}"})["id"]
        assert start_twice_at_once(api, project) == [202, 409]
        rounds = api.get(f"/projects/{project}/rounds")
        assert [r["number"] for r in rounds] == [1]
        assert len(api.get(f"/projects/{project}/jobs")) == 1
