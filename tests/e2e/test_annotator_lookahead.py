"""The look-ahead: while an image is labeled, the one tasks/next will hand out after it is
downloaded (GET .../tasks/upcoming, no lease), and a submit opens it without downloading it
again; if another annotator takes it meanwhile, the submit opens what the claim hands out."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

import httpx
from playwright.sync_api import Page, Request, expect

from tests.e2e.scenario import LabelingProject, labeling_project
from tests.e2e.server import PASSWORD, Server, login
from tests.e2e.workspace_page import WorkspacePage, log_in, wait_paintable


@dataclass
class Downloads:
    """Per image id, the resource downloads the page made: (resource, submitted yet)."""

    made: dict[int, list[tuple[str, bool]]] = field(default_factory=dict)
    submitted: bool = False

    def record(self, request: Request) -> None:
        path = request.url.split("?")[0]
        parts = path.split("/")
        if request.method != "GET" or "images" not in parts:
            return
        resource = parts[-1]
        if resource in ("file", "preview", "superpixels", "mask"):
            image = int(parts[parts.index("images") + 1])
            self.made.setdefault(image, []).append((resource, self.submitted))


def _open_first_task(
    page: Page, server: Server, project: LabelingProject
) -> tuple[int, dict[str, object], Downloads]:
    """Logs in, waits for the first task and for the page's look-ahead: (first query id,
    the upcoming task it was told, the downloads recorded)."""
    downloads = Downloads()
    page.on("request", downloads.record)
    with page.expect_response(lambda r: "/tasks/upcoming" in r.url) as answer:
        log_in(page, server.base_url, project.annotator)
        first = wait_paintable(page)
    assert answer.value.status == 200
    (upcoming,) = answer.value.json()
    assert upcoming["query_id"] != first
    image = upcoming["image_id"]
    # The look-ahead downloads the upcoming image's photo, map and mask while this one is open.
    page.wait_for_function(
        """(image) => ["file", "superpixels", "mask"].every((kind) =>
            performance.getEntriesByType("resource").some((entry) =>
                entry.name.split("?")[0].endsWith(`/images/${image}/${kind}`)
                && entry.responseEnd > 0))""",
        arg=image,
    )
    return first, upcoming, downloads


def _submit(page: Page, downloads: Downloads, first: int) -> int:
    workspace = WorkspacePage(page, 1, 1)
    downloads.submitted = True
    workspace.press("Enter")
    expect(page.locator('[data-modal="confirm-submit"]')).to_be_visible()
    workspace.press("Enter")  # submit with unlabeled superpixels
    return wait_paintable(page, previous=str(first))


def test_submit_opens_the_image_downloaded_ahead(
    server: Server, admin: httpx.Client, page: Page
) -> None:
    project = labeling_project(server, admin, images=3)
    first, upcoming, downloads = _open_first_task(page, server, project)

    second = _submit(page, downloads, first)
    assert second == upcoming["query_id"]
    hit = page.evaluate(
        "(name) => performance.getEntriesByName(name).length", f"tessera:lookahead-hit:{second}"
    )
    assert hit == 1
    # Each of its resources was downloaded once, before the submit: none again after it.
    made = downloads.made[int(str(upcoming["image_id"]))]
    assert sorted(made) == [
        ("file", False),
        ("mask", False),
        ("superpixels", False),
    ], made


def test_submit_falls_back_when_another_annotator_took_the_image(
    server: Server, admin: httpx.Client, page: Page
) -> None:
    project = labeling_project(server, admin, images=3)
    first, upcoming, downloads = _open_first_task(page, server, project)
    other = f"other-{uuid.uuid4().hex[:8]}@e2e.example.org"
    admin.post(
        "/users", json={"email": other, "name": "Other", "password": PASSWORD}
    ).raise_for_status()
    admin.post(
        f"/projects/{project.project_id}/members", json={"email": other, "role": "annotator"}
    ).raise_for_status()
    client = login(server, other)
    try:
        taken = client.post(f"/projects/{project.project_id}/tasks/next")
    finally:
        client.close()
    assert taken.status_code == 200, taken.text
    assert taken.json()["query_id"] == upcoming["query_id"]

    second = _submit(page, downloads, first)
    assert second not in (first, upcoming["query_id"])
    hit = page.evaluate(
        "(name) => performance.getEntriesByName(name).length", f"tessera:lookahead-hit:{second}"
    )
    assert hit == 0
    third_image = next(image.image_id for image in project.images if image.query_id == second)
    # Downloaded on the claim, after the submit; the workspace shows that image.
    assert ("file", True) in downloads.made[third_image]
    assert page.evaluate("document.body.dataset.paintable") == str(second)
