"""Pre-fill from the model and screen-width outlines (issue 15), in Debian's Chromium.

The seeded query carries predicted classes (as a scored round's query does): R fills every
asked superpixel with its prediction, the annotator fixes the wrong ones with the fill tool,
and the server stores the corrected mask with the save marked as pre-filled. Outlines are
measured on the outline canvas at two zoom levels: one CSS pixel wide at both.
"""

from __future__ import annotations

import base64

import httpx
import numpy as np
from numpy.typing import NDArray
from playwright.sync_api import Page, expect
from sqlalchemy import update

from core.db import make_engine, make_session_factory
from core.masks import UNLABELED
from core.models import Query
from tests.e2e.scenario import LabelingProject, labeling_project
from tests.e2e.server import ADMIN_EMAIL, Server
from tests.e2e.test_annotator import mask_saves, stored_state
from tests.e2e.workspace_page import WorkspacePage, interior_point, log_in, wait_paintable

OUTLINES = 'canvas[data-layer="outlines"]'
YELLOW = (255, 214, 0)  # an asked superpixel with unlabeled pixels (render.ts)
GREEN = (76, 195, 138)  # an asked superpixel fully labeled


def majority_truth(project: LabelingProject, image: int) -> dict[int, int]:
    """superpixel -> its most frequent true class, for every asked superpixel of the image."""
    queried = project.images[image]
    truth = project.truths[queried.image_id]
    return {
        s: int(np.bincount(truth[queried.pixels_of(s)], minlength=4).argmax())
        for s in queried.queried
    }


def set_prediction(server: Server, query_id: int, ids: list[int], classes: list[int]) -> None:
    engine = make_engine(server.database_url)
    try:
        with make_session_factory(engine)() as session:
            session.execute(
                update(Query)
                .where(Query.id == query_id)
                .values(superpixel_ids=ids, predicted_classes=classes)
            )
            session.commit()
    finally:
        engine.dispose()


# Resolves once the outlines are drawn for the current view: while the view moves they are
# carried along by a CSS transform, which a crisp redraw clears.
SETTLED = """async (selector) => {
    const canvas = document.querySelector(selector);
    const frame = () => new Promise((done) => requestAnimationFrame(() => done()));
    await frame();
    for (let k = 0; k < 300 && canvas.style.transform !== ""; k++) await frame();
    await frame();
    return canvas;
}"""


def outline_rgba(page: Page) -> NDArray[np.uint8]:
    """The outline canvas as drawn, (H, W, 4), once drawn for the current view."""
    read = (
        "async (selector) => { const canvas = await (" + SETTLED + ")(selector);"
        """
            const { width, height } = canvas;
            const data = canvas.getContext("2d").getImageData(0, 0, width, height).data;
            let binary = "";
            for (let k = 0; k < data.length; k += 0x8000) {
                binary += String.fromCharCode(...data.subarray(k, k + 0x8000));
            }
            return [btoa(binary), width, height];
        }"""
    )
    encoded, width, height = page.evaluate(read, OUTLINES)
    raw = np.frombuffer(base64.b64decode(encoded), dtype=np.uint8)
    return raw.reshape(height, width, 4)


def mask_scale(page: Page, image_width: int) -> float:
    """Screen pixels per image pixel now (the layers' CSS transform)."""
    box = page.locator('canvas[data-layer="mask"]').bounding_box()
    assert box is not None
    return box["width"] / image_width


def coloured(rgba: NDArray[np.uint8], colour: tuple[int, int, int]) -> NDArray[np.bool_]:
    # Translucent colours come back from the canvas rounded (it stores them premultiplied).
    near = np.abs(rgba[..., :3].astype(np.int16) - np.array(colour, dtype=np.int16)) <= 3
    found: NDArray[np.bool_] = (rgba[..., 3] > 0) & np.all(near, axis=-1)
    return found


def line_width(lines: NDArray[np.bool_]) -> tuple[float, float]:
    """(share of line pixels with line on all four sides, the most common horizontal run
    length): about 0 and 1 for one-pixel lines, larger for bars."""
    inner = lines[1:-1, 1:-1] & lines[:-2, 1:-1] & lines[2:, 1:-1] & lines[1:-1, :-2]
    inner &= lines[1:-1, 2:]
    runs: list[int] = []
    for row in lines:
        edges = np.flatnonzero(np.diff(np.concatenate(([0], row.astype(np.int8), [0]))))
        runs.extend((edges[1::2] - edges[0::2]).tolist())
    counts = np.bincount(runs)
    return float(inner.sum()) / max(int(lines.sum()), 1), float(counts.argmax())


def stored_prefilled(admin: httpx.Client, project: LabelingProject, image_id: int) -> list[bool]:
    """The ``prefilled`` flag of each stored save of the image, oldest first (the API's)."""
    answer = admin.get(f"/projects/{project.project_id}/images/{image_id}/submissions")
    answer.raise_for_status()
    return [bool(save["prefilled"]) for save in answer.json()]


def test_accept_prediction_then_correct_stores_the_fixed_mask_as_prefilled(
    server: Server, admin: httpx.Client, page: Page
) -> None:
    project = labeling_project(server, admin, images=2)
    queried = project.images[0]
    right = majority_truth(project, 0)
    ids = sorted(right)
    # The model is right on all but three superpixels (wrong ones: the next class).
    wrong = ids[1:4]
    predicted = {s: (c + 1) % 4 if s in wrong else c for s, c in right.items()}
    set_prediction(server, queried.query_id, ids, [predicted[s] for s in ids])
    second = project.images[1]
    second_ids = sorted(majority_truth(project, 1))
    set_prediction(server, second.query_id, second_ids, [0] * len(second_ids))

    log_in(page, server.base_url, project.annotator)
    assert wait_paintable(page) == queried.query_id
    workspace = WorkspacePage(page, project.width, project.height)
    total = len(ids)
    assert workspace.progress() == (0, total)
    expect(page.locator('[data-action="accept-prediction"]')).to_be_enabled()

    flag = page.locator(".workspace")
    expect(flag).to_have_attribute("data-prefilled", "false")
    workspace.press("r")
    assert workspace.progress() == (total, total)
    expect(flag).to_have_attribute("data-prefilled", "true")
    # One undo step takes the whole pre-fill back; redo brings it and the flag back.
    workspace.press("Control+z")
    assert workspace.progress() == (0, total)
    expect(flag).to_have_attribute("data-prefilled", "false")
    workspace.press("Control+Shift+z")
    assert workspace.progress() == (total, total)
    expect(flag).to_have_attribute("data-prefilled", "true")

    # Corrections: pick the right class, click inside each wrongly predicted superpixel.
    for superpixel in wrong:
        x, y, _ = interior_point(queried.pixels_of(superpixel))
        workspace.press(str(right[superpixel] + 1))
        workspace.click(x, y)
    expect(page.locator('[data-stat="clicks"]')).to_have_text(f"{1 + len(wrong)} clicks")

    saves = mask_saves(page)
    workspace.press("Enter")
    assert wait_paintable(page, previous=str(queried.query_id)) == second.query_id
    assert len(saves) == 1 and saves[0][1]["prefilled"] is True
    assert stored_prefilled(admin, project, queried.image_id) == [True]
    mask, _, history, _ = stored_state(server, queried.image_id)
    expected = np.full((project.height, project.width), UNLABELED, dtype=np.uint8)
    for superpixel, value in right.items():
        expected[queried.pixels_of(superpixel)] = value
    assert np.array_equal(mask, expected)
    assert history[-1].prefilled is True
    assert history[-1].clicks == 1 + len(wrong)
    assert history[-1].seconds > 0

    # The second image: pre-filled, then the whole pre-fill undone and labeled by hand (one
    # Shift+G): the save is not a pre-filled one.
    expect(flag).to_have_attribute("data-prefilled", "false")
    workspace.press("r")
    expect(flag).to_have_attribute("data-prefilled", "true")
    workspace.press("Control+z")
    expect(flag).to_have_attribute("data-prefilled", "false")
    workspace.press("2")
    workspace.press("Shift+g")
    assert workspace.progress() == (len(second_ids), len(second_ids))
    workspace.press("Enter")
    expect(page.locator(f'[data-empty="{project.project_id}"]')).to_be_visible()
    assert len(saves) == 2 and saves[1][1]["prefilled"] is False
    assert stored_prefilled(admin, project, second.image_id) == [False]

    # The lead's dashboard counts the image among those started from the prediction.
    page.context.clear_cookies()
    log_in(page, server.base_url, ADMIN_EMAIL)
    page.wait_for_url(lambda url: "/login" not in url)
    page.goto(f"{server.base_url}/projects/{project.project_id}/dashboard")
    panel = page.locator('[data-panel="prefill"]')
    expect(panel.locator('[data-group="with"] td').nth(1)).to_have_text("1")
    expect(panel.locator('[data-group="without"] td').nth(1)).to_have_text("1")


def test_without_a_prediction_the_button_is_disabled_and_r_says_why(
    server: Server, admin: httpx.Client, page: Page
) -> None:
    project = labeling_project(server, admin)
    log_in(page, server.base_url, project.annotator)
    wait_paintable(page)
    expect(page.locator('[data-action="accept-prediction"]')).to_be_disabled()
    page.keyboard.press("r")
    expect(page.locator(".toast")).to_contain_text("no prediction")
    assert WorkspacePage(page, project.width, project.height).progress()[0] == 0


def test_outlines_stay_one_pixel_wide_when_zooming_and_turn_green_when_done(
    server: Server, admin: httpx.Client, page: Page
) -> None:
    project = labeling_project(server, admin)
    queried = project.images[0]
    right = majority_truth(project, 0)
    ids = sorted(right)
    set_prediction(server, queried.query_id, ids, [right[s] for s in ids])
    log_in(page, server.base_url, project.annotator)
    wait_paintable(page)
    stage = page.locator(".stage").bounding_box()
    assert stage is not None

    fitted = outline_rgba(page)
    # The overlay covers the stage in CSS pixels (not the image's resolution).
    assert fitted.shape[:2] == (int(stage["height"]), int(stage["width"]))
    scale_fit = mask_scale(page, project.width)
    for _ in range(6):  # zoom in about 3.8x around the stage's centre
        page.keyboard.press("+")
    zoomed = outline_rgba(page)
    scale_zoomed = mask_scale(page, project.width)
    assert scale_zoomed > 3 * scale_fit

    for rgba in (fitted, zoomed):
        lines = rgba[..., 3] > 0
        assert lines.sum() > 1000
        inner_share, common_run = line_width(lines)
        assert common_run == 1.0, f"outline runs are {common_run} px wide"
        assert inner_share < 0.02, f"{inner_share:.1%} of outline pixels lie inside a thick line"
        assert coloured(rgba, YELLOW).sum() > 500  # asked and unlabeled: bright

    page.keyboard.press("r")  # every asked superpixel labeled: outlines turn green
    done = outline_rgba(page)
    assert coloured(done, YELLOW).sum() == 0
    assert coloured(done, GREEN).sum() > 500
    # X hides every outline and the dimming; pressed again they come back.
    page.keyboard.press("x")
    expect(page.locator(OUTLINES)).to_be_hidden()
    page.keyboard.press("x")
    expect(page.locator(OUTLINES)).to_be_visible()
