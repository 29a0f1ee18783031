"""A few hundred generated hostile requests (tests/hostile.py) against the API on SQLite and
PostgreSQL: no 5xx, no file written outside the data directory, and no database change
when a request is refused. bench/hostile_inputs.py runs the same generator at 10,000+."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from backend.settings import Settings
from tests.backend.builders import World
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
