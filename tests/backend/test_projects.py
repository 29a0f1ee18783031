"""Projects, settings, classes and members through the API."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.backend.builders import World
from tests.backend.test_authz_matrix import api_routes


def test_creator_becomes_lead_with_paper_defaults(client: TestClient, world: World) -> None:
    user = world.user("lead@example.org")
    response = client.post(
        "/api/v1/projects",
        json={"name": "Fields", "classes": [{"name": "crop", "colour": "#00AA00"}]},
        headers=user.headers,
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["role"] == "lead"
    assert body["classes"] == [{"id": 1, "index": 0, "name": "crop", "colour": "#00aa00"}]
    defaults = {k: body[k] for k in ("superpixel_size", "strategy", "static_fraction")}
    assert defaults == {"superpixel_size": 32, "strategy": "dynamic", "static_fraction": 0.275}
    assert (body["uncertainty"], body["mc_samples"]) == ("entropy", 20)


def test_settings_are_validated(client: TestClient, world: World) -> None:
    lead = world.user("lead@example.org")
    project = world.project(lead)
    url = f"/api/v1/projects/{project}"
    bad = client.patch(url, json={"strategy": "clever", "mc_samples": 0}, headers=lead.headers)
    assert bad.status_code == 422
    good = client.patch(
        url, json={"strategy": "static", "static_fraction": 0.3}, headers=lead.headers
    )
    assert good.status_code == 200
    assert (good.json()["strategy"], good.json()["static_fraction"]) == ("static", 0.3)


def test_projects_list_shows_only_memberships(client: TestClient, world: World) -> None:
    alice = world.user("alice@example.org")
    bob = world.user("bob@example.org")
    admin = world.user("admin@example.org", admin=True)
    world.project(alice, name="A")
    world.project(bob, name="B")
    names = [p["name"] for p in client.get("/api/v1/projects", headers=alice.headers).json()]
    assert names == ["A"]
    everything = client.get("/api/v1/projects", headers=admin.headers).json()
    assert [p["name"] for p in everything] == ["A", "B"]


def test_class_indices_and_names_are_unique_and_255_is_reserved(
    client: TestClient, world: World
) -> None:
    lead = world.user("lead@example.org")
    project = world.project(lead)  # classes 0, 1, 2
    url = f"/api/v1/projects/{project}/classes"
    added = client.post(url, json={"name": "tree", "colour": "#00ff00"}, headers=lead.headers)
    assert added.json()["index"] == 3
    taken = client.post(
        url, json={"name": "bush", "colour": "#00ff00", "index": 3}, headers=lead.headers
    )
    assert taken.status_code == 409
    same_name = client.post(url, json={"name": "tree", "colour": "#00ff00"}, headers=lead.headers)
    assert same_name.status_code == 409
    reserved = client.post(
        url, json={"name": "void", "colour": "#000000", "index": 255}, headers=lead.headers
    )
    assert reserved.status_code == 422


def test_class_cannot_be_deleted_once_labels_exist(client: TestClient, world: World) -> None:
    import numpy as np

    lead = world.user("lead@example.org")
    project = world.project(lead)
    image = world.image(project)
    url = f"/api/v1/projects/{project}/classes/1"
    world.ground_truth(image, np.zeros((24, 32), np.uint8))
    response = client.delete(url, headers=lead.headers)
    assert response.status_code == 409
    assert "Rename it instead" in response.json()["detail"]


def test_members_can_be_added_and_the_last_lead_kept(client: TestClient, world: World) -> None:
    lead = world.user("lead@example.org")
    ann = world.user("ann@example.org")
    project = world.project(lead)
    url = f"/api/v1/projects/{project}/members"
    added = client.post(url, json={"email": "ann@example.org"}, headers=lead.headers)
    assert added.status_code == 201
    assert added.json()["role"] == "annotator"
    assert client.get(f"/api/v1/projects/{project}", headers=ann.headers).status_code == 200
    demote = client.patch(f"{url}/{lead.id}", json={"role": "annotator"}, headers=lead.headers)
    assert demote.status_code == 409
    assert client.delete(f"{url}/{lead.id}", headers=lead.headers).status_code == 409
    assert client.delete(f"{url}/{ann.id}", headers=lead.headers).status_code == 204
    assert client.get(f"/api/v1/projects/{project}", headers=ann.headers).status_code == 404


def test_deleting_a_project_removes_its_images(client: TestClient, world: World) -> None:
    lead = world.user("lead@example.org")
    project = world.project(lead)
    world.image(project)
    assert client.delete(f"/api/v1/projects/{project}", headers=lead.headers).status_code == 204
    assert client.get(f"/api/v1/projects/{project}", headers=lead.headers).status_code == 404


def test_image_listing_filters_and_download(client: TestClient, world: World) -> None:
    lead = world.user("lead@example.org")
    project = world.project(lead)
    first = world.image(project)
    world.image(project, split="validation")  # type: ignore[arg-type]
    listed = client.get(
        f"/api/v1/projects/{project}/images", params={"split": "pool"}, headers=lead.headers
    ).json()
    assert [i["id"] for i in listed] == [first]
    page = client.get(
        f"/api/v1/projects/{project}/images", params={"limit": 1}, headers=lead.headers
    )
    assert (len(page.json()), page.headers["x-total-count"]) == (1, "2")
    base = f"/api/v1/projects/{project}/images/{first}"
    file = client.get(f"{base}/file", headers=lead.headers)
    assert file.headers["content-type"] == "image/png"
    assert file.content.startswith(b"\x89PNG")
    cached = client.get(
        f"{base}/file", headers={**lead.headers, "If-None-Match": file.headers["etag"]}
    )
    assert (cached.status_code, cached.content) == (304, b"")
    thumbnail = client.get(f"{base}/thumbnail", headers=lead.headers)
    assert thumbnail.headers["content-type"] == "image/jpeg"
    moved = client.patch(base, json={"split": "test"}, headers=lead.headers)
    assert moved.json()["split"] == "test"


def test_openapi_lists_every_endpoint_with_schemas(app: FastAPI, client: TestClient) -> None:
    spec = client.get("/api/v1/openapi.json").json()
    documented = {(method.upper(), path) for path, item in spec["paths"].items() for method in item}
    served = {
        (method, path)
        for method, path in api_routes(app)
        if path.startswith("/api/v1/") and path != "/api/v1/openapi.json"
    }
    assert documented == served
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            success = {code: r for code, r in operation["responses"].items() if code < "300"}
            assert success, f"{method} {path} documents no success response"
            for code, response in success.items():
                if code != "204":
                    assert response.get("content"), f"{method} {path} {code} has no schema"
            body = operation.get("requestBody", {}).get("content", {})
            for media in body.values():
                assert media.get("schema"), f"{method} {path} request body has no schema"
    assert "examples" in str(spec["components"]["schemas"]["ProjectCreate"])
    assert client.get("/docs").status_code == 200
