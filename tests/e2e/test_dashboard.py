"""The lead dashboard in Debian's Chromium against a real ``tessera serve`` and a real
``tessera worker`` (embedded broker, tiny model) on a fresh database.

Three rounds run through the API first (the oracle answers them from ground truth), so the
learning curve has points and a projection. Then a lead logs in, lands on the dashboard, sees
the budget and learning-curve figures the API reports, starts round 4 and watches its job
go to done; an annotator is refused. Screenshot: artifacts/dashboard.png.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image as PILImage
from playwright.sync_api import Page, expect

from tests.e2e.server import (
    ADMIN_EMAIL,
    PASSWORD,
    REPO,
    Server,
    fresh_database,
    login,
    process_env,
    running_server,
)
from tests.e2e.workspace_page import log_in
from worker.simulation.synthetic import CLASSES, generate_scene

# The worker's settings: a width-4 U-Net and a few dozen iterations (seconds per round).
TINY_WORKER = {
    "TESSERA_MODEL_WIDTH": "4",
    "TESSERA_MODEL_DEPTH": "2",
    "TESSERA_TRAIN_ITERATIONS": "40",
    "TESSERA_FINETUNE_ITERATIONS": "30",
    "TESSERA_TRAIN_BATCH_SIZE": "4",
    "TESSERA_LEARNING_RATE": "0.01",
    "TESSERA_SCORE_CHUNK_IMAGES": "8",
    "TESSERA_DEVICE": "cpu",
    "OMP_NUM_THREADS": "1",
}
SIMULATION = Path(__file__).parent / "data" / "simulation_rounds.jsonl"
DOCS_SCREENSHOT = REPO / "docs" / "dashboard.png"


def _scene(rng: np.random.Generator) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """A generated scene without its void top row: an image whose ground truth is complete
    is labeled in full by the oracle and leaves the pool (void pixels would keep it there,
    and the next round would ask for them again)."""
    image, truth = generate_scene(48, 64, rng)
    truth[0] = truth[1]
    return image, truth


def _png(array: np.ndarray[Any, Any]) -> bytes:
    buffer = io.BytesIO()
    PILImage.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


@dataclass(frozen=True)
class DashboardProject:
    server: Server
    project_id: int
    lead: str
    annotator: str


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, frontend_dist: Path) -> Iterator[Server]:
    """A server and one worker of its own (its jobs must not reach other tests' servers)."""
    directory = tmp_path_factory.mktemp("e2e-dashboard")
    kind = os.environ.get("TESSERA_E2E_DATABASE", "postgresql")
    with (
        fresh_database(kind, directory) as database_url,
        running_server(database_url, directory, directory / "server.log") as server,
    ):
        log = (directory / "worker.log").open("wb")
        worker = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from tessera.cli import main; main()",
                "worker",
                "--hostname",
                f"dash-{uuid.uuid4().hex[:6]}@%h",
            ],
            env=process_env({**server.env, **TINY_WORKER}),
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            yield server
        finally:
            worker.terminate()
            try:
                worker.wait(timeout=20)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait(timeout=10)
            log.close()


def _wait(check: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.3)
    pytest.fail(f"timed out after {timeout} s waiting for {what}")


def _job_done(client: httpx.Client, project: int, job_id: int) -> None:
    def ended() -> Any:
        job = client.get(f"/projects/{project}/jobs/{job_id}").json()
        return job if job["status"] in ("succeeded", "failed") else None

    job = _wait(ended, 240, f"job {job_id}")
    assert job["status"] == "succeeded", job["error"]


def _oracle_round(client: httpx.Client, project: int) -> None:
    """Starts a round, lets the worker query, lets the oracle answer, closes it."""
    started = client.post(f"/projects/{project}/rounds")
    assert started.status_code == 202, started.text
    _job_done(client, project, started.json()["job"]["id"])
    round_id = started.json()["round"]["id"]
    oracle = client.post(f"/projects/{project}/rounds/{round_id}/oracle", json={"mode": "exact"})
    assert oracle.status_code == 202, oracle.text
    _job_done(client, project, oracle.json()["id"])
    client.post(f"/projects/{project}/rounds/{round_id}/close").raise_for_status()


@pytest.fixture(scope="module")
def project(stack: Server) -> DashboardProject:
    unique = uuid.uuid4().hex[:8]
    lead, annotator = f"lead-{unique}@e2e.example.org", f"ann-{unique}@e2e.example.org"
    admin = login(stack, ADMIN_EMAIL)
    for email, name in ((lead, "Lena Lead"), (annotator, "Ari Annotator")):
        admin.post(
            "/users", json={"email": email, "name": name, "password": PASSWORD}
        ).raise_for_status()
    admin.close()
    client = login(stack, lead)
    created = client.post(
        "/projects",
        json={
            "name": "Synthetic scenes",
            "classes": [
                {"name": c["name"], "colour": "#{:02x}{:02x}{:02x}".format(*c["color"])}
                for c in CLASSES
            ],
            "superpixel_size": 8,
            "mc_samples": 2,
            "initial_images": 4,
            "images_per_round": 4,
            "budget_pixels": 40_000,
            "budget_hours": 2,
            "model_architecture": "unet",  # the tiny U-Net above, seconds per round
        },
    )
    created.raise_for_status()
    project_id = int(created.json()["id"])
    client.post(
        f"/projects/{project_id}/members", json={"email": annotator, "role": "annotator"}
    ).raise_for_status()
    rng = np.random.default_rng(7)
    for split, count in (("pool", 16), ("validation", 4)):
        scenes = [_scene(rng) for _ in range(count)]
        upload = client.post(
            f"/projects/{project_id}/images",
            files=[("files", (f"{split}{k}.png", _png(rgb))) for k, (rgb, _) in enumerate(scenes)],
            data={"split": split},
        )
        upload.raise_for_status()
        for row, (_, truth) in zip(upload.json()["created"], scenes, strict=True):
            client.put(
                f"/projects/{project_id}/images/{row['id']}/ground-truth",
                files={"file": ("truth.png", _png(truth))},
            ).raise_for_status()
    _wait(
        lambda: (
            not client.get(f"/projects/{project_id}/images", params={"status": "processing"}).json()
        ),
        180,
        "superpixels of every upload",
    )
    for _ in range(3):
        _oracle_round(client, project_id)
    if SIMULATION.exists():
        client.post(
            f"/projects/{project_id}/dashboard/simulations",
            files={"file": ("rounds.jsonl", SIMULATION.read_bytes())},
            data={"name": "tessera simulate on generated scenes"},
        ).raise_for_status()
    client.close()
    return DashboardProject(stack, project_id, lead, annotator)


def test_lead_sees_api_figures_and_runs_a_round_to_done(
    project: DashboardProject, page: Page, artifacts: Path
) -> None:
    server = project.server
    lead = login(server, project.lead)
    board = lead.get(f"/projects/{project.project_id}/dashboard").json()
    curve = board["learning_curve"]
    assert len(curve["points"]) == 2 and curve["projection"] is not None

    log_in(page, server.base_url, project.lead)
    # A lead of one project lands on its dashboard.
    page.wait_for_url(f"**/projects/{project.project_id}/dashboard")
    expect(page.locator('[data-panel="budget"]')).to_be_visible()

    for line in board["budget"]["lines"]:
        card = page.locator(f'.budget-card[data-unit="{line["unit"]}"]')
        assert float(card.get_attribute("data-spent") or "nan") == pytest.approx(line["spent"])
        expected_set = "" if line["set"] is None else line["set"]
        shown_set = card.get_attribute("data-set") or ""
        assert (
            (shown_set == "")
            if expected_set == ""
            else float(shown_set) == pytest.approx(expected_set)
        )
    assert (
        page.locator('[data-panel="budget"]').get_attribute("data-level")
        == board["budget"]["level"]
    )
    pixels_card = page.locator('.budget-card[data-unit="pixels"] .budget-spent')
    assert pixels_card.inner_text() == f"{round(board['budget']['lines'][0]['spent']):,}"

    rows = page.locator('[data-testid="curve-points"] tbody tr')
    expect(rows).to_have_count(len(curve["points"]))
    for k, point in enumerate(curve["points"]):
        row = rows.nth(k)
        assert int(row.get_attribute("data-round") or 0) == point["round_number"]
        assert int(row.get_attribute("data-pixels") or 0) == point["labeled_pixels"]
        assert float(row.get_attribute("data-miou") or "nan") == pytest.approx(point["miou"])
        assert row.locator("td").nth(3).inner_text() == f"{point['miou'] * 100:.1f}"
    projection = page.locator('[data-testid="projection"]')
    assert float(projection.get_attribute("data-miou") or "nan") == pytest.approx(
        curve["projection"]["miou"]
    )
    expect(projection).to_contain_text("a + b·ln(labeled pixels)")
    expect(page.locator('[data-testid="learning-curve"] canvas')).to_have_count(1)
    expect(page.locator('[data-panel="rounds"] tbody tr')).to_have_count(3)
    expect(page.locator('[data-panel="team"]')).to_contain_text("oracle@tessera.invalid")

    # Start round 4 from the page and watch its job until it is done.
    start = page.locator('[data-action="start-round"]')
    expect(start).to_be_enabled()
    previous = page.locator('.job[data-kind="round"]').first.get_attribute("data-job")
    start.click()
    expect(start).to_be_disabled()
    expect(page.locator('.job[data-kind="round"]').first).not_to_have_attribute(
        "data-job", previous or ""
    )
    job_id = page.locator('.job[data-kind="round"]').first.get_attribute("data-job")
    round_job = page.locator(f'.job[data-job="{job_id}"]')
    seen: set[str] = set()
    progress: list[str] = []
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        status = round_job.get_attribute("data-status") or ""
        seen.add(status)
        progress.append(round_job.locator('[data-testid="job-progress"]').inner_text())
        if status in ("succeeded", "failed"):
            break
        page.wait_for_timeout(250)
    assert round_job.get_attribute("data-status") == "succeeded", progress
    assert seen & {"queued", "running"}, seen
    expect(round_job.locator('[data-testid="job-progress"]')).to_have_text("100 %")
    expect(page.locator('[data-testid="current-round"]')).to_contain_text(
        "Round 4 is labeling", timeout=10_000
    )
    expect(start).to_be_disabled()  # round 4 is labeling: one round at a time
    expect(page.locator('[data-panel="rounds"] tbody tr')).to_have_count(4)
    expect(page.locator('[data-testid="curve-points"] tbody tr')).to_have_count(3)
    after = lead.get(f"/projects/{project.project_id}/dashboard/learning-curve").json()
    assert len(after["points"]) == 3

    page.wait_for_timeout(300)  # let the chart settle before the picture
    shot = artifacts / "dashboard.png"
    page.screenshot(path=str(shot), full_page=True)
    if os.environ.get("TESSERA_UPDATE_DOCS_SCREENSHOT"):
        shutil.copyfile(shot, DOCS_SCREENSHOT)

    # The oracle answers round 4 from ground truth; the lead closes it; the next may start.
    page.click('[data-action="oracle-exact"]')
    current = page.locator('[data-testid="current-round"]')
    expect(current).to_contain_text("4 of 4 queried images labeled", timeout=120_000)
    spent = lead.get(f"/projects/{project.project_id}/dashboard/budget").json()["lines"][0]
    expect(page.locator('.budget-card[data-unit="pixels"]')).to_have_attribute(
        "data-spent", str(int(spent["spent"]))
    )
    assert spent["spent"] > board["budget"]["lines"][0]["spent"]
    page.click('[data-action="close-round"]')
    expect(current).to_contain_text("Round 4 is complete")
    expect(start).to_be_enabled()
    lead.close()


def test_annotator_cannot_open_the_dashboard(project: DashboardProject, page: Page) -> None:
    server = project.server
    annotator = login(server, project.annotator)
    refused = annotator.get(f"/projects/{project.project_id}/dashboard")
    assert refused.status_code == 403
    annotator.close()

    log_in(page, server.base_url, project.annotator)
    page.wait_for_url("**/label")
    page.goto(f"{server.base_url}/projects/{project.project_id}/dashboard")
    forbidden = page.locator('[data-testid="forbidden"]')
    expect(forbidden).to_contain_text("403")
    expect(forbidden).to_contain_text("Only a lead")
    expect(page.locator('[data-panel="budget"]')).to_have_count(0)


def test_simulation_fixture_is_simulate_output() -> None:
    """The committed simulation rows are what ``tessera simulate`` writes (one JSON object
    per line with the fields the dashboard reads)."""
    lines = SIMULATION.read_text().splitlines()
    assert lines
    for line in lines:
        row = json.loads(line)
        assert {"strategy", "seed", "round", "labeled_pixel_fraction", "val_miou"} <= set(row)
