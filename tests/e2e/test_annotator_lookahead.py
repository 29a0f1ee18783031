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
from tests.e2e.test_content_security_policy import _violations, strict_page
from tests.e2e.workspace_page import MASK_CANVAS, WorkspacePage, log_in, wait_paintable

__all__ = ["strict_page"]  # the fixture, shared with test_content_security_policy.py


@dataclass
class Downloads:
    """Per image id, the resource downloads the page (or its workers) made: (resource,
    submitted yet), and those that finished."""

    made: dict[int, list[tuple[str, bool]]] = field(default_factory=dict)
    finished: set[tuple[int, str]] = field(default_factory=set)
    submitted: bool = False

    @staticmethod
    def _resource(request: Request) -> tuple[int, str] | None:
        parts = request.url.split("?")[0].split("/")
        if request.method != "GET" or "images" not in parts:
            return None
        if parts[-1] not in ("file", "preview", "superpixels", "mask"):
            return None
        return int(parts[parts.index("images") + 1]), parts[-1]

    def record(self, request: Request) -> None:
        if found := self._resource(request):
            self.made.setdefault(found[0], []).append((found[1], self.submitted))

    def record_finished(self, request: Request) -> None:
        if found := self._resource(request):
            self.finished.add(found)


def _open_first_task(
    page: Page, server: Server, project: LabelingProject
) -> tuple[int, dict[str, object], Downloads]:
    """Logs in, waits for the first task and for the page's look-ahead: (first query id,
    the upcoming task it was told, the downloads recorded)."""
    downloads = Downloads()
    page.on("request", downloads.record)
    page.on("requestfinished", downloads.record_finished)
    with page.expect_response(lambda r: "/tasks/upcoming" in r.url) as answer:
        log_in(page, server.base_url, project.annotator)
        first = wait_paintable(page)
    assert answer.value.status == 200
    (upcoming,) = answer.value.json()
    assert upcoming["query_id"] != first
    image = upcoming["image_id"]
    # The look-ahead downloads the upcoming image's photo, map and mask while this one is open.
    for _ in range(200):
        if {(image, kind) for kind in ("file", "superpixels", "mask")} <= downloads.finished:
            break
        page.wait_for_timeout(100)
    else:
        raise AssertionError(f"image {image} was not downloaded ahead: {downloads.made}")
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


def test_the_look_ahead_runs_under_the_content_security_policy(
    server: Server, admin: httpx.Client, strict_page: tuple[Page, list[str]]
) -> None:
    """Its worker (a script of the built UI) may run and fetch under the UI's policy."""
    page, problems = strict_page
    project = labeling_project(server, admin, images=2)
    downloads = Downloads()
    page.on("request", downloads.record)
    page.on("requestfinished", downloads.record_finished)
    log_in(page, server.base_url, project.annotator)
    page.locator("body[data-paintable]").wait_for(state="attached")
    first = int(page.evaluate("document.body.dataset.paintable"))
    (other,) = [image for image in project.images if image.query_id != first]
    expect(page.locator(MASK_CANVAS)).to_be_visible()
    for _ in range(200):
        if (other.image_id, "superpixels") in downloads.finished:
            break
        page.wait_for_timeout(100)
    workspace = WorkspacePage(page, project.width, project.height)
    workspace.press("Enter")
    expect(page.locator('[data-modal="confirm-submit"]')).to_be_visible()
    workspace.press("Enter")
    page.locator(f'body[data-paintable="{other.query_id}"]').wait_for(state="attached")
    hit = page.evaluate(
        "(name) => performance.getEntriesByName(name).length",
        f"tessera:lookahead-hit:{other.query_id}",
    )
    assert hit == 1
    assert not problems and not _violations(page), (problems, _violations(page))
