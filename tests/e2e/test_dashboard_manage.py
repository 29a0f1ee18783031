"""The lead's pages in Debian's Chromium without a worker: settings, classes and members
change what the API reports; images dropped on the page are uploaded with a progress bar; a
failed round shows its error and the Retry button queues it again."""

from __future__ import annotations

import base64
import uuid
from pathlib import Path

import httpx
import numpy as np
from playwright.sync_api import Page, expect

from core.db import make_engine, make_session_factory
from core.models import Job, JobStatus, Round, RoundStatus
from tests.e2e.scenario import png
from tests.e2e.server import PASSWORD, Server, login
from tests.e2e.workspace_page import log_in


def test_lead_edits_settings_classes_members_and_drops_images(
    server: Server, admin: httpx.Client, page: Page, artifacts: Path
) -> None:
    unique = uuid.uuid4().hex[:8]
    lead, helper = f"lead-{unique}@e2e.example.org", f"helper-{unique}@e2e.example.org"
    for email in (lead, helper):
        admin.post("/users", json={"email": email, "password": PASSWORD}).raise_for_status()
    client = login(server, lead)
    project = client.post(
        "/projects",
        json={"name": f"Manage {unique}", "classes": [{"name": "sky", "colour": "#8080ff"}]},
    ).json()["id"]

    log_in(page, server.base_url, lead)
    page.wait_for_url(f"**/projects/{project}/dashboard")
    expect(page.locator('[data-panel="budget"]')).to_contain_text("No budget set")
    page.click("a.tab >> text=Manage")
    page.wait_for_url(f"**/projects/{project}/manage")

    form = page.locator('[data-form="settings"]')
    form.locator('input[name="images_per_round"]').fill("7")
    form.locator('input[name="budget_pixels"]').fill("123456")
    form.locator('select[name="strategy"]').select_option("static")
    form.locator('button[type="submit"]').click()
    expect(form.locator(".feedback")).to_contain_text("Saved")
    settings = client.get(f"/projects/{project}").json()
    assert (settings["images_per_round"], settings["budget_pixels"], settings["strategy"]) == (
        7,
        123456,
        "static",
    )

    page.fill('input[placeholder="new class"]', "road")
    page.click("button >> text=Add class")
    expect(page.locator('input[aria-label="name of class 1"]')).to_have_value("road")
    assert [c["name"] for c in client.get(f"/projects/{project}/classes").json()] == ["sky", "road"]

    page.fill('input[placeholder="email of an existing user"]', helper)
    page.click("button >> text=Add member")
    expect(page.locator(f'[data-member="{helper}"]')).to_be_visible()
    members = {m["email"]: m["role"] for m in client.get(f"/projects/{project}/members").json()}
    assert members[helper] == "annotator"

    # Drop two PNGs on the drop zone, as a file manager would.
    images = [png(np.full((24, 32, 3), k * 80, dtype=np.uint8)) for k in (1, 2)]
    page.evaluate(
        """([first, second]) => {
            const transfer = new DataTransfer();
            [first, second].forEach((data, k) => {
                const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
                transfer.items.add(new File([bytes], `drop${k}.png`, { type: "image/png" }));
            });
            const zone = document.querySelector('[data-testid="drop-zone"]');
            const init = { dataTransfer: transfer, bubbles: true, cancelable: true };
            zone.dispatchEvent(new DragEvent("dragover", init));
            zone.dispatchEvent(new DragEvent("drop", init));
        }""",
        [base64.b64encode(data).decode() for data in images],
    )
    expect(page.locator(".feedback >> text=2 new images")).to_be_visible()
    expect(page.locator(".panel .meter > span").first).to_have_attribute("style", "width: 100%;")
    assert len(client.get(f"/projects/{project}/images").json()) == 2
    page.screenshot(path=str(artifacts / "dashboard-manage.png"), full_page=True)
    zip_link = page.locator('[data-action="export-zip"]')
    assert zip_link.get_attribute("href") == f"/api/v1/projects/{project}/export?format=zip"
    client.close()


def test_failed_round_shows_its_error_and_retries(
    server: Server, admin: httpx.Client, page: Page
) -> None:
    unique = uuid.uuid4().hex[:8]
    lead = f"lead-{unique}@e2e.example.org"
    admin.post("/users", json={"email": lead, "password": PASSWORD}).raise_for_status()
    client = login(server, lead)
    project = client.post("/projects", json={"name": f"Retry {unique}"}).json()["id"]
    # A round whose worker failed, as the worker leaves it (no worker runs in this server).
    engine = make_engine(server.database_url)
    try:
        with make_session_factory(engine)() as session:
            round_ = Round(
                project_id=project, number=1, strategy="dynamic", status=RoundStatus.failed
            )
            session.add(round_)
            session.flush()
            job = Job(
                project_id=project,
                round_id=round_.id,
                kind="round",
                status=JobStatus.failed,
                error="RuntimeError: out of memory while training",
                message="round 1: training",
            )
            session.add(job)
            session.commit()
            job_id = job.id
    finally:
        engine.dispose()

    log_in(page, server.base_url, lead)
    page.wait_for_url(f"**/projects/{project}/dashboard")
    row = page.locator(f'.job[data-job="{job_id}"]')
    expect(row).to_have_attribute("data-status", "failed")
    row.locator("summary").click()
    expect(row.locator(".job-error")).to_contain_text("out of memory")
    expect(page.locator('[data-action="start-round"]')).to_be_enabled()  # a failed round is over
    row.locator('[data-action="retry"]').click()
    expect(row).to_have_attribute("data-status", "queued")
    expect(page.locator('[data-action="start-round"]')).to_be_disabled()
    assert client.get(f"/projects/{project}/jobs/{job_id}").json()["status"] == "queued"
    assert client.get(f"/projects/{project}/rounds").json()[0]["status"] == "pending"
    client.close()
