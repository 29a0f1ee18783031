"""Takes the README's screenshots from a real server and Chromium, on seeded data.

    .venv/bin/python scripts/screenshots.py     # writes docs/screenshots/*.png

A fresh SQLite database and ``tessera serve`` on a free port (as the end-to-end tests run
them), a project with six street scenes in a labeling round (tests/e2e/seed.py stands in for
the worker), three of them submitted by the annotator with their true classes; one is sent
back and one accepted. Then Debian's Chromium at 1440x900 takes: the annotator's workspace
(workspace.png), the lead's image browser (images.png), review mode (review.png) and the
dashboard (dashboard.png).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import httpx
import numpy as np
from playwright.sync_api import Page, ViewportSize, sync_playwright

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the repository, for tests.e2e
from tests.e2e.scenario import LabelingProject, labeling_project  # noqa: E402
from tests.e2e.seed import QueriedImage  # noqa: E402
from tests.e2e.server import (  # noqa: E402
    ADMIN_EMAIL,
    CHROMIUM,
    CHROMIUM_ARGS,
    Server,
    fresh_database,
    login,
    running_server,
)
from tests.e2e.workspace_page import WorkspacePage, interior_point, log_in, wait_paintable  # noqa: E402

OUT = REPO / "docs" / "screenshots"
VIEWPORT: ViewportSize = {"width": 1440, "height": 900}


def true_fills(project: LabelingProject, queried: QueriedImage) -> list[list[int]]:
    """[superpixel, class]: each asked superpixel filled with its most common true class."""
    truth = project.truths[queried.image_id]
    fills = []
    for superpixel in queried.queried:
        classes = np.bincount(truth[queried.pixels_of(superpixel)], minlength=4)
        fills.append([superpixel, int(classes.argmax())])
    return fills


def submit_three(server: Server, project: LabelingProject) -> list[int]:
    """The annotator submits their first three tasks with the true classes; their image ids."""
    client = login(server, project.annotator)
    by_image = {q.image_id: q for q in project.images}
    submitted = []
    try:
        for _ in range(3):
            task = client.post(f"/projects/{project.project_id}/tasks/next").json()
            queried = by_image[int(task["image_id"])]
            client.patch(
                f"/projects/{project.project_id}/images/{queried.image_id}/mask",
                json={
                    "superpixel_map_id": task["superpixel_map_id"],
                    "fills": true_fills(project, queried),
                    "clicks": len(queried.queried),
                    "seconds": 40.0,
                    "done": True,
                },
                headers={"If-Match": f'"{task["mask_version"]}"'},
            ).raise_for_status()
            submitted.append(queried.image_id)
    finally:
        client.close()
    return submitted


def settle(page: Page) -> None:
    page.wait_for_load_state("networkidle")
    page.wait_for_timeout(400)


def take(server: Server, admin: httpx.Client, page: Page, lead: Page) -> None:
    project = labeling_project(server, admin, images=6)
    pid = project.project_id
    accepted, sent_back, waiting = submit_three(server, project)
    admin.post(f"/projects/{pid}/review/images/{accepted}", json={"decision": "accepted"})
    admin.post(
        f"/projects/{pid}/review/images/{sent_back}",
        json={"decision": "sent_back", "comment": "The car's wheels are road; make them car."},
    ).raise_for_status()

    # The annotator's workspace on the task sent back to them, half labeled again.
    log_in(page, server.base_url, project.annotator)
    wait_paintable(page)
    queried = next(q for q in project.images if q.image_id == sent_back)
    workspace = WorkspacePage(page, project.width, project.height)
    for superpixel, class_index in true_fills(project, queried)[: len(queried.queried) // 2]:
        x, y, _ = interior_point(queried.pixels_of(superpixel))
        workspace.press(str(class_index + 1))
        workspace.click(x, y)
    settle(page)
    page.screenshot(path=str(OUT / "workspace.png"))

    log_in(lead, server.base_url, ADMIN_EMAIL)
    lead.wait_for_function("!location.pathname.startsWith('/login')")
    lead.goto(f"{server.base_url}/projects/{pid}/images")
    lead.locator('[data-testid="image-grid"] li').first.wait_for()
    settle(lead)
    lead.screenshot(path=str(OUT / "images.png"))

    lead.goto(f"{server.base_url}/projects/{pid}/review/{waiting}")
    lead.locator('[data-testid="review-stage"] canvas').first.wait_for()
    lead.fill('textarea[name="comment"]', "Looks right; the sky edge is clean.")
    settle(lead)
    lead.screenshot(path=str(OUT / "review.png"))

    lead.goto(f"{server.base_url}/projects/{pid}/dashboard")
    lead.locator('[data-panel="budget"]').wait_for()
    settle(lead)
    lead.screenshot(path=str(OUT / "dashboard.png"), full_page=True)


def main() -> None:
    if not (REPO / "frontend" / "dist" / "index.html").exists():
        subprocess.run(["bash", str(REPO / "scripts" / "frontend.sh")], check=True)
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        directory = Path(scratch)
        with (
            fresh_database("sqlite", directory) as database_url,
            running_server(database_url, directory, directory / "server.log") as server,
            sync_playwright() as playwright,
        ):
            admin = login(server, ADMIN_EMAIL)
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            try:
                # Playwright's waits evaluate strings, which the UI's policy refuses.
                annotator_context = browser.new_context(viewport=VIEWPORT, bypass_csp=True)
                lead_context = browser.new_context(viewport=VIEWPORT, bypass_csp=True)
                take(server, admin, annotator_context.new_page(), lead_context.new_page())
            finally:
                browser.close()
                admin.close()
    for name in ("workspace", "images", "review", "dashboard"):
        print(f"wrote {OUT / name}.png")


if __name__ == "__main__":
    main()
