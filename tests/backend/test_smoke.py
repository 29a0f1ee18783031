from __future__ import annotations

from fastapi.testclient import TestClient

from tests.backend.builders import World


def test_health_answers_without_login(client: TestClient) -> None:
    assert client.get("/api/v1/health").json() == {"status": "ok"}


def test_lead_sees_project_with_classes(client: TestClient, world: World) -> None:
    lead = world.user("lead@example.org")
    project = world.project(lead)
    world.image(project)
    body = client.get(f"/api/v1/projects/{project}", headers=lead.headers).json()
    assert body["role"] == "lead"
    assert [c["name"] for c in body["classes"]] == ["sky", "road", "car"]
    assert body["image_count"] == 1
