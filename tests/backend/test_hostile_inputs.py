"""A few hundred generated hostile requests (tests/hostile.py) against the API on SQLite and
PostgreSQL: no 5xx, no file written outside the data directory, and no database change
when a request is refused. bench/hostile_inputs.py runs the same generator at 10,000+."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from core.settings import Settings
from tests.backend.builders import World, png_bytes
from tests.hostile import Target, check_inputs, generate_many

SEED = 12
COUNT = 300
FAMILIES = {
    "upload",
    "ground truth",
    "mask save",
    "if-match",
    "project json",
    "simulation",
    "ids",
    "login",
    "query strings",
}


def seed_target(world: World) -> tuple[Target, dict[str, str]]:
    """A lead's project with an image under labeling; returns the target and the lead's
    headers."""
    lead = world.user("lead@example.org")
    annotator = world.user("ann@example.org")
    project = world.project(lead, annotators=(annotator,))
    other = world.project(annotator, name="Elsewhere")
    image = world.image(project, width=32, height=24)
    world.superpixel_grid(image, cell=8)
    round_ = world.round(project)
    query = world.query(round_, image, [0, 1, 5])
    return Target(project, image, round_, query, other), lead.headers


def test_hostile_inputs_get_no_5xx_change_nothing_when_refused_and_stay_in_the_data_dir(
    app: FastAPI,
    world: World,
    settings: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    target, headers = seed_target(world)
    # Relative paths, were any built from a file name, would land here.
    monkeypatch.chdir(tmp_path)
    client = TestClient(app, raise_server_exceptions=False)
    report = check_inputs(
        client,
        app.state.engine,
        generate_many(SEED, COUNT, target),
        headers=headers,
        sandbox=tmp_path,
        data_dir=settings.data_dir,
    )
    print(
        f"hostile inputs: {report.sent} sent, {report.refused} refused, "
        f"statuses {dict(sorted(report.statuses.items()))}"
    )
    assert report.sent == COUNT
    assert report.server_errors == []
    assert report.changed_on_refusal == []
    assert report.escaped_files == []
    # The generator must reach every family and be mostly refused, or it tests little.
    assert {family.split(":")[0] for family in report.by_family} == FAMILIES
    assert report.refused > COUNT // 2


def _simulation(body: bytes) -> dict[str, object]:
    return {"files": [("file", ("rounds.jsonl", body, "application/json"))]}


# Each was a 500 (issue 12, item 3, found by schemathesis and the generator); now a 4xx.
REPORTED: dict[str, tuple[str, str, dict[str, object], int, str]] = {
    "id above 2^63": ("GET", "/api/v1/projects/9223372036854775809", {}, 422, "less than or equal"),
    "id above 2^31": ("GET", "/api/v1/projects/{p}/images/2147483648", {}, 422, "less than or"),
    "exclude id above 2^63": (
        "POST",
        "/api/v1/projects/{p}/tasks/next?exclude=598986661098850003157149995874910208",
        {},
        422,
        "less than or equal",
    ),
    "offset above 2^63": (
        "GET",
        "/api/v1/projects/{p}/images?offset=18446744073709551616",
        {},
        422,
        "less than or equal",
    ),
    "budget_pixels of 2^64": (
        "PATCH",
        "/api/v1/projects/{p}",
        {"json": {"budget_pixels": 2**64}},
        422,
        "less than or equal",
    ),
    "If-Match of 2^64": (
        "PUT",
        "/api/v1/projects/{p}/images/{i}/mask",
        {
            "headers": {"If-Match": '"18446744073709551616"', "Content-Type": "image/png"},
            "content": png_bytes(np.full((24, 32), 255, np.uint8)),
        },
        400,
        "is not a mask version",
    ),
    "NUL in a project name": (
        "POST",
        "/api/v1/projects",
        {"json": {"name": "a\x00b"}},
        422,
        "NUL character",
    ),
    "NUL in an unauthenticated login": (
        "POST",
        "/api/v1/auth/login",
        {"json": {"email": "a\x00b@example.org", "password": "x"}, "anonymous": True},
        422,
        "NUL character",
    ),
    "Infinity echoed by a validation error": (
        "PATCH",
        "/api/v1/projects/{p}",
        {
            "content": b'{"initial_images": Infinity}',
            "headers": {"Content-Type": "application/json"},
        },
        422,
        "inf",
    ),
    "simulation nested 100,000 deep": (
        "POST",
        "/api/v1/projects/{p}/dashboard/simulations",
        _simulation(b"[" * 100_000 + b"]" * 100_000),
        422,
        "nests deeper than 32 levels",
    ),
    "simulation with a 5,000-digit number": (
        "POST",
        "/api/v1/projects/{p}/dashboard/simulations",
        _simulation(b'{"round": ' + b"9" * 5_000 + b"}"),
        422,
        "a number of 5000 characters",
    ),
    "simulation with NaN": (
        "POST",
        "/api/v1/projects/{p}/dashboard/simulations",
        _simulation(
            b'{"strategy": "dynamic", "round": 1, "labeled_pixel_fraction": 0.1, '
            b'"val_miou": 0.5, "extra": NaN}'
        ),
        422,
        "NaN is not a JSON number",
    ),
}


@pytest.mark.parametrize("case", list(REPORTED))
def test_reported_malformed_input_is_refused_with_a_4xx_naming_it(
    case: str, client: TestClient, world: World
) -> None:
    (target, headers) = seed_target(world)
    method, path, options, status_code, message = REPORTED[case]
    options = dict(options)
    anonymous = options.pop("anonymous", False)
    extra = options.pop("headers", {})
    assert isinstance(extra, dict)
    response = client.request(
        method,
        path.format(p=target.project, i=target.image),
        headers={**({} if anonymous else headers), **extra},
        **options,  # type: ignore[arg-type]
    )
    assert response.status_code == status_code, response.text
    assert message in response.text


def test_settings_sent_as_null_keep_their_value(client: TestClient, world: World) -> None:
    target, headers = seed_target(world)
    url = f"/api/v1/projects/{target.project}"
    response = client.patch(url, json={"superpixel_size": None, "name": None}, headers=headers)
    assert response.status_code == 200, response.text
    assert response.json()["superpixel_size"] == 32


def test_method_not_allowed_lists_every_method_of_the_path(client: TestClient) -> None:
    response = client.request("OPTIONS", "/api/v1/users/me")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, PATCH"


def test_openapi_documents_the_errors_routes_answer(client: TestClient) -> None:
    paths = client.get("/api/v1/openapi.json").json()["paths"]
    image = paths["/api/v1/projects/{project_id}/images/{image_id}"]
    assert {"401", "404", "422"} <= set(image["get"]["responses"])
    assert {"401", "403", "404"} <= set(image["delete"]["responses"])
    assert {"400", "409", "412", "428"} <= set(
        paths["/api/v1/projects/{project_id}/images/{image_id}/mask"]["put"]["responses"]
    )
