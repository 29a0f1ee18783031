"""The annotator workspace in Debian's Chromium against the real server and database.

An annotator logs in, lands on the next task, fills and brushes queried superpixels, cannot
touch locked ones, undoes, submits; the database then holds exactly the expected pixels and
a history row with the clicks and seconds spent.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from playwright.sync_api import Page, Request, expect
from sqlalchemy import select

from core.db import make_engine, make_session_factory
from core.masks import UNLABELED, decode_stored_mask, encode_mask_png
from core.models import Annotation, AnnotationSubmission, Image, Query, QueryStatus
from tests.e2e.scenario import LabelingProject, labeling_project
from tests.e2e.server import Server
from tests.e2e.workspace_page import WorkspacePage, interior_point, log_in, wait_paintable

BRUSH = 8  # the workspace's default brush for superpixel size 32 (a quarter of it)


def stored_state(
    server: Server, image_id: int
) -> tuple[np.ndarray, int, list[AnnotationSubmission], QueryStatus]:
    engine = make_engine(server.database_url)
    try:
        with make_session_factory(engine)() as session:
            annotation = session.scalar(select(Annotation).where(Annotation.image_id == image_id))
            assert annotation is not None
            image = session.get(Image, image_id)
            assert image is not None
            mask = decode_stored_mask(annotation.mask_png, image.width, image.height)
            history = list(
                session.scalars(
                    select(AnnotationSubmission)
                    .where(AnnotationSubmission.image_id == image_id)
                    .order_by(AnnotationSubmission.version)
                )
            )
            status = session.scalar(select(Query.status).where(Query.image_id == image_id))
            assert status is not None
            return mask, annotation.version, history, status
    finally:
        engine.dispose()


def drafts(page: Page) -> list[str]:
    keys: list[str] = page.evaluate(
        "Object.keys(localStorage).filter((key) => key.startsWith('tessera.draft.'))"
    )
    return keys


def deepest(project: LabelingProject, image: int, superpixels: list[int]) -> list[int]:
    """The superpixels sorted from the most to the least interior room."""
    queried = project.images[image]
    depth = {s: interior_point(queried.pixels_of(s))[2] for s in superpixels}
    return sorted(superpixels, key=lambda s: -depth[s])


def test_annotator_fills_brushes_undoes_and_submits_exact_pixels(
    server: Server, admin: httpx.Client, page: Page, artifacts: Path
) -> None:
    project = labeling_project(server, admin)
    queried = project.images[0]
    assert len(queried.queried) >= 3

    log_in(page, server.base_url, project.annotator)
    page.wait_for_url(f"**/projects/{project.project_id}/label")
    assert wait_paintable(page) == queried.query_id
    workspace = WorkspacePage(page, project.width, project.height)
    assert workspace.progress() == (0, len(queried.queried))

    first, second = deepest(project, 0, queried.queried)[:2]
    ax, ay, a_depth = interior_point(queried.pixels_of(first))
    bx, by, _ = interior_point(queried.pixels_of(second))
    assert a_depth >= BRUSH // 2 + 4, "the seeded superpixel is too thin for the brush"

    # Fill two superpixels: "road" (class key 3 -> index 2) and "car" (key 4 -> index 3).
    workspace.press("3")
    workspace.click(ax, ay)
    workspace.press("4")
    workspace.click(bx, by)
    assert workspace.progress()[0] == 2
    after_fills = workspace.mask_rgba()
    assert tuple(after_fills[ay, ax, :3]) == project.class_colour(2)
    assert tuple(after_fills[by, bx, :3]) == project.class_colour(3)

    # Brush a short stroke of "sky" inside the first one.
    workspace.press("b")
    workspace.press("1")
    workspace.stroke([(ax - 2, ay), (ax + 2, ay)])
    brushed = workspace.mask_rgba()
    assert tuple(brushed[ay, ax, :3]) == project.class_colour(0)
    changed = np.any(brushed != after_fills, axis=2)
    assert changed.any() and not (changed & ~queried.pixels_of(first)).any()

    # Brush inside a locked superpixel: nothing changes.
    locked = [s for s in range(int(queried.labels.max()) + 1) if s not in queried.queried]
    lx, ly, l_depth = interior_point(queried.pixels_of(deepest(project, 0, locked)[0]))
    assert l_depth >= BRUSH // 2 + 4
    workspace.stroke([(lx - 2, ly), (lx + 2, ly)])
    assert np.array_equal(workspace.mask_rgba(), brushed)
    assert workspace.progress()[0] == 2

    # Undo once: the brush stroke goes, the fills stay, pixel for pixel.
    workspace.press("Control+z")
    assert np.array_equal(workspace.mask_rgba(), after_fills)
    expect(page.locator('[data-stat="clicks"]')).to_have_text("4 clicks")
    page.screenshot(path=str(artifacts / "workspace-e2e.png"))

    # Submit (two of the queried superpixels: the app asks first), then nothing is left.
    page.wait_for_timeout(300)  # time on task must be measurable
    saves = mask_saves(page)
    workspace.press("Enter")
    expect(page.locator('[data-modal="confirm-submit"]')).to_be_visible()
    workspace.press("Enter")
    expect(page.locator(f'[data-empty="{project.project_id}"]')).to_be_visible()
    assert drafts(page) == [], "a submitted image must leave no local draft"
    # The save is the edit, not the mask: two one-click fills and no runs.
    assert [(method, body["fills"], body["runs"]) for method, body in saves] == [
        ("PATCH", sorted([[first, 2], [second, 3]]), [])
    ]

    mask, version, history, status = stored_state(server, queried.image_id)
    expected = np.full((project.height, project.width), UNLABELED, dtype=np.uint8)
    expected[queried.pixels_of(first)] = 2
    expected[queried.pixels_of(second)] = 3
    assert np.array_equal(mask, expected)
    assert version == 1
    assert status == QueryStatus.done
    assert len(history) == 1
    (row,) = history
    assert row.clicks == 4
    assert 0.3 <= row.seconds < 120
    assert row.changed_pixels == int((expected != UNLABELED).sum())
    assert row.superpixel_ids == sorted([first, second])


def mask_saves(page: Page) -> list[tuple[str, dict[str, Any]]]:
    """Every mask save the page sends from now on: (method, JSON body)."""
    saves: list[tuple[str, dict[str, Any]]] = []

    def record(request: Request) -> None:
        if request.url.split("?")[0].endswith("/mask") and request.method in ("PUT", "PATCH"):
            body = json.loads(request.post_data or "{}") if request.method == "PATCH" else {}
            body["fills"] = sorted(body.get("fills", []))
            saves.append((request.method, body))

    page.on("request", record)
    return saves


def test_a_brushed_edge_is_saved_as_runs_and_stored_exactly(
    server: Server, admin: httpx.Client, page: Page
) -> None:
    project = labeling_project(server, admin)
    queried = project.images[0]
    log_in(page, server.base_url, project.annotator)
    assert wait_paintable(page) == queried.query_id
    workspace = WorkspacePage(page, project.width, project.height)
    first, second = deepest(project, 0, queried.queried)[:2]
    ax, ay, _ = interior_point(queried.pixels_of(first))
    bx, by, b_depth = interior_point(queried.pixels_of(second))
    assert b_depth >= BRUSH // 2 + 4, "the seeded superpixel is too thin for the brush"
    workspace.press("3")
    workspace.click(ax, ay)  # superpixel `first` filled with class 2
    workspace.press("b")
    workspace.press("4")
    workspace.stroke([(bx - 2, by), (bx + 2, by)])  # class 3 brushed inside `second`
    saves = mask_saves(page)
    page.wait_for_timeout(300)
    workspace.press("Enter")
    expect(page.locator('[data-modal="confirm-submit"]')).to_be_visible()
    workspace.press("Enter")
    expect(page.locator(f'[data-empty="{project.project_id}"]')).to_be_visible()

    ((method, body),) = saves
    assert method == "PATCH"
    assert body["fills"] == [[first, 2]]
    assert body["runs"] and {value for _, _, value in body["runs"]} == {3}
    mask, version, history, _ = stored_state(server, queried.image_id)
    runs = np.zeros(project.height * project.width, dtype=bool)
    for offset, length, _ in body["runs"]:
        runs[offset : offset + length] = True
    brushed = runs.reshape(project.height, project.width)
    # Every run lies inside the brushed superpixel, around the stroke.
    assert not (brushed & ~queried.pixels_of(second)).any()
    assert brushed[by, bx - 2 : bx + 3].all()
    rows, columns = np.nonzero(brushed)
    assert abs(rows - by).max() <= BRUSH and (columns >= bx - 2 - BRUSH).all()
    expected = np.full((project.height, project.width), UNLABELED, dtype=np.uint8)
    expected[queried.pixels_of(first)] = 2
    expected[brushed] = 3
    assert np.array_equal(mask, expected)
    assert version == 1
    assert history[0].superpixel_ids == sorted([first, second])
    assert history[0].changed_pixels == int((expected != UNLABELED).sum())


def test_draft_survives_reload_and_a_conflict_reapplies_edits(
    server: Server, admin: httpx.Client, page: Page, artifacts: Path
) -> None:
    project = labeling_project(server, admin)
    queried = project.images[0]
    truth = project.truths[queried.image_id]
    log_in(page, server.base_url, project.annotator)
    wait_paintable(page)
    workspace = WorkspacePage(page, project.width, project.height)

    # Label most queried superpixels with their majority true class, key by key.
    order = deepest(project, 0, queried.queried)
    mine, theirs = order[:-1][: max(3, len(order) * 2 // 3)], order[-1]
    for superpixel in mine:
        region = queried.pixels_of(superpixel)
        majority = int(np.bincount(truth[region], minlength=4).argmax())
        x, y, _ = interior_point(region)
        workspace.press(str(majority + 1))
        workspace.click(x, y)
    assert workspace.progress()[0] == len(mine)
    expect(page.locator('[data-stat="draft"]')).to_have_text("Draft kept on this device")
    drawn = workspace.mask_rgba()
    page.screenshot(path=str(artifacts / "workspace.png"))

    # A reload loses nothing.
    page.reload()
    wait_paintable(page)
    assert workspace.progress()[0] == len(mine)
    assert np.array_equal(workspace.mask_rgba(), drawn)

    # Meanwhile a lead saves another queried superpixel: the annotator's version is stale.
    lead_mask = np.full((project.height, project.width), UNLABELED, dtype=np.uint8)
    lead_mask[queried.pixels_of(theirs)] = 1
    saved = admin.put(
        f"/projects/{project.project_id}/images/{queried.image_id}/mask",
        content=encode_mask_png(lead_mask),
        headers={"If-Match": '"0"', "Content-Type": "image/png"},
        params={"clicks": 1, "seconds": 2.0},
    )
    assert saved.status_code == 200, saved.text

    workspace.press("Enter")
    expect(page.locator('[data-modal="confirm-submit"]')).to_be_visible()
    workspace.press("Enter")
    conflict = page.locator('[data-modal="conflict"]')
    expect(conflict).to_be_visible()
    expect(conflict).to_contain_text("version 1")
    workspace.press("Enter")  # reload theirs and re-apply mine
    expect(conflict).to_have_count(0)
    wait_paintable(page)
    expect(page.locator('[data-stat="progress"]')).to_have_attribute(
        "data-labeled", str(len(mine) + 1)
    )
    workspace.press("Enter")
    if len(mine) + 1 < len(queried.queried):
        workspace.press("Enter")
    expect(page.locator(f'[data-empty="{project.project_id}"]')).to_be_visible()
    assert drafts(page) == []

    mask, version, history, _ = stored_state(server, queried.image_id)
    assert version == 2
    assert (mask[queried.pixels_of(theirs)] == 1).all()
    for superpixel in mine:
        region = queried.pixels_of(superpixel)
        majority = int(np.bincount(truth[region], minlength=4).argmax())
        assert (mask[region] == majority).all()
    assert [row.clicks for row in history] == [1, len(mine)]


def test_view_keys_help_and_skip(server: Server, admin: httpx.Client, page: Page) -> None:
    project = labeling_project(server, admin, images=2)
    log_in(page, server.base_url, project.annotator)
    first = wait_paintable(page)
    workspace = WorkspacePage(page, project.width, project.height)

    # Wheel zoom keeps the image point under the cursor in place; F fits again.
    mask = page.locator('canvas[data-layer="mask"]')
    fitted = mask.bounding_box()
    assert fitted is not None
    x, y = workspace.to_screen(100, 80)
    page.mouse.move(x, y)
    page.mouse.wheel(0, -400)
    page.wait_for_function(
        f"document.querySelector('canvas[data-layer=mask]').getBoundingClientRect().width"
        f" > {fitted['width'] * 1.5}"
    )
    assert all(abs(a - b) < 2 for a, b in zip(workspace.to_screen(100, 80), (x, y), strict=True))

    def fit() -> None:
        workspace.press("f")
        page.wait_for_function(
            f"Math.abs(document.querySelector('canvas[data-layer=mask]').getBoundingClientRect()"
            f".width - {fitted['width']}) < 1"
        )

    fit()

    # N zooms to a queried superpixel still unlabeled.
    workspace.press("n")
    page.wait_for_function(
        f"document.querySelector('canvas[data-layer=mask]').getBoundingClientRect().width"
        f" > {fitted['width'] * 1.5}"
    )
    fit()

    # Space + drag pans by the drag.
    before = mask.bounding_box()
    assert before is not None
    page.keyboard.down("Space")
    page.mouse.move(400, 400)
    page.mouse.down()
    page.mouse.move(460, 370, steps=3)
    page.mouse.up()
    page.keyboard.up("Space")
    page.wait_for_function(
        "([x, y]) => { const r = document.querySelector('canvas[data-layer=mask]')"
        ".getBoundingClientRect(); return Math.abs(r.x - x) < 1 && Math.abs(r.y - y) < 1; }",
        arg=[before["x"] + 60, before["y"] - 30],
    )
    assert workspace.progress()[0] == 0, "panning must not paint"

    # The brush outline is the system cursor (a valid CSS cursor, or there would be none).
    workspace.press("b")
    page.mouse.move(*workspace.to_screen(200, 150))
    page.wait_for_function(
        "getComputedStyle(document.querySelector('.stage')).cursor"
        ".startsWith('url(\"data:image/svg+xml')"
    )
    cursor = page.evaluate("getComputedStyle(document.querySelector('.stage')).cursor")
    assert cursor.endswith("crosshair")
    workspace.press("g")

    # U shows the query's uncertainty heat map, O cycles the mask's opacity.
    heat = page.locator('canvas[data-layer="uncertainty"]')
    expect(heat).to_be_hidden()
    workspace.press("u")
    expect(heat).to_be_visible()
    workspace.press("o")
    expect(mask).to_have_css("opacity", "0.3")

    page.keyboard.press("?")
    help_overlay = page.locator(".help")
    expect(help_overlay).to_be_visible()
    for key in ("Ctrl+Z", "Ctrl+Shift+Z", "Enter", "[", "]", "F", "N", "U", "O", "?", "1-9"):
        expect(help_overlay.locator("kbd", has_text=key).first).to_be_visible()
    page.keyboard.press("Escape")
    expect(help_overlay).to_have_count(0)

    page.keyboard.press("s")
    second = wait_paintable(page, previous=str(first))
    assert {first, second} == {image.query_id for image in project.images}

    # Skipping the last unskipped image brings a skipped one back, with a note.
    page.keyboard.press("s")
    page.wait_for_function(
        "document.body.dataset.paintable !== undefined"
        " && document.querySelector('.toast')?.textContent.includes('one you skipped')"
    )
    current = wait_paintable(page)
    assert current in {first, second}

    # Submitting shows the other image (claimed and downloaded while the save ran).
    workspace.press("Enter")
    workspace.press("Enter")  # submit with unlabeled superpixels
    other = wait_paintable(page, previous=str(current))
    assert {current, other} == {first, second}

    # Logging out from the workspace ends the session.
    page.click('[data-action="logout"]')
    page.wait_for_url("**/login**")
    page.goto(f"{server.base_url}/label")
    page.wait_for_url("**/login?next=%2Flabel")
