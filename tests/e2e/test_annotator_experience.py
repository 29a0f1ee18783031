"""Fewer clicks and a keyboard that does what it says (issue 15), in Debian's Chromium.

Drag-fill and fill-all are checked against what the server stored; focus handling by what
Enter and Space do on a focused control; the narrow layout by where the controls end up.
"""

from __future__ import annotations

import httpx
import numpy as np
from playwright.sync_api import Page, expect

from core.masks import UNLABELED
from tests.e2e.scenario import labeling_project
from tests.e2e.seed import QueriedImage
from tests.e2e.server import PASSWORD, Server
from tests.e2e.test_annotator import mask_saves, stored_state
from tests.e2e.workspace_page import WorkspacePage, log_in, wait_paintable


def widest_row_run(queried: QueriedImage, minimum: int) -> tuple[int, int, int, list[int]]:
    """(y, x0, x1, superpixels): a row segment crossing the most queried superpixels, with
    ``minimum`` of them at least, stopping short of the first locked one it would reach."""
    best: tuple[int, int, int, list[int]] | None = None
    asked = set(queried.queried)
    height, width = queried.labels.shape
    for y in range(4, height - 4, 3):
        row = queried.labels[y]
        x = 0
        while x < width:
            if int(row[x]) not in asked:
                x += 1
                continue
            start = x
            while x < width and int(row[x]) in asked:
                x += 1
            crossed = sorted({int(s) for s in row[start:x]})
            if best is None or len(crossed) > len(best[3]):
                best = (y, start + 1, x - 2, crossed)
    assert best is not None and len(best[3]) >= minimum, "too few queried superpixels in a row"
    return best


def test_drag_fill_then_fill_all_store_every_asked_superpixel(
    server: Server, admin: httpx.Client, page: Page
) -> None:
    project = labeling_project(server, admin)
    queried = project.images[0]
    log_in(page, server.base_url, project.annotator)
    assert wait_paintable(page) == queried.query_id
    workspace = WorkspacePage(page, project.width, project.height)
    total = len(queried.queried)

    # One drag with the fill tool ("car", key 4 -> index 3) across a row of asked superpixels.
    y, x0, x1, crossed = widest_row_run(queried, minimum=3)
    workspace.press("4")
    workspace.stroke([(x0, y), (x1, y)], steps=12)
    assert workspace.progress() == (len(crossed), total)
    # One undo step takes the whole drag back; redo brings it again.
    workspace.press("Control+z")
    assert workspace.progress() == (0, total)
    workspace.press("Control+Shift+z")
    assert workspace.progress() == (len(crossed), total)

    # Fill-all ("road", key 3 -> index 2): everything still asked and unlabeled.
    workspace.press("3")
    workspace.press("Shift+G")
    assert workspace.progress() == (total, total)
    expect(page.locator('[data-stat="clicks"]')).to_have_text("2 clicks")

    saves = mask_saves(page)
    workspace.press("Enter")  # all labeled: no confirmation
    expect(page.locator(f'[data-empty="{project.project_id}"]')).to_be_visible()
    assert len(saves) == 1
    mask, _, history, _ = stored_state(server, queried.image_id)
    expected = np.full((project.height, project.width), UNLABELED, dtype=np.uint8)
    for superpixel in queried.queried:
        expected[queried.pixels_of(superpixel)] = 3 if superpixel in crossed else 2
    assert np.array_equal(mask, expected)
    assert history[-1].clicks == 2


def test_enter_and_space_press_the_focused_button_not_submit(
    server: Server, admin: httpx.Client, page: Page
) -> None:
    project = labeling_project(server, admin, images=2)
    log_in(page, server.base_url, project.annotator)
    first = wait_paintable(page)
    saves = mask_saves(page)

    # Tab reaches the toolbar; Space on the focused Brush button selects the brush.
    brush = page.locator('button[data-tool="brush"]')
    page.locator('button[data-tool="fill"]').focus()
    page.keyboard.press("Tab")
    expect(brush).to_be_focused()
    page.keyboard.press("Space")
    expect(brush).to_have_attribute("aria-pressed", "true")
    expect(brush).to_be_focused()
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline == "solid", "keyboard focus must be visible"
    # Letters still work with a toolbar button focused.
    page.keyboard.press("g")
    expect(page.locator('button[data-tool="fill"]')).to_have_attribute("aria-pressed", "true")

    # Skip focused + Enter skips: no submit dialog, nothing saved.
    page.locator('[data-action="skip"]').focus()
    page.keyboard.press("Enter")
    second = wait_paintable(page, previous=str(first))
    expect(page.locator('[data-modal="confirm-submit"]')).to_have_count(0)
    assert saves == []

    # The new workspace has the keyboard; Tab moves through the top bar's controls.
    expect(page.locator(".stage")).to_be_focused()
    page.locator('[data-action="help"]').focus()
    page.keyboard.press("Enter")
    expect(page.locator(".help")).to_be_visible()
    page.keyboard.press("Escape")
    expect(page.locator(".help")).to_have_count(0)

    # Space on the focused Skip button skips too (the skipped image comes back).
    page.locator('[data-action="skip"]').focus()
    page.keyboard.press("Space")
    wait_paintable(page, previous=str(second))
    assert saves == []

    # A mouse click on a control hands the keyboard back to the image: Enter submits.
    page.locator('button[data-tool="fill"]').click()
    expect(page.locator(".stage")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator('[data-modal="confirm-submit"]')).to_be_visible()


def test_narrow_window_keeps_controls_on_screen_and_resize_refits(
    server: Server, admin: httpx.Client, page: Page
) -> None:
    project = labeling_project(server, admin)
    page.set_viewport_size({"width": 800, "height": 600})
    log_in(page, server.base_url, project.annotator)
    wait_paintable(page)
    for action in ("skip", "submit", "help"):
        box = page.locator(f'[data-action="{action}"]').bounding_box()
        assert box is not None
        assert box["x"] >= 0 and box["x"] + box["width"] <= 800, action
        assert box["y"] >= 0 and box["y"] + box["height"] <= 600, action

    def mask_width() -> float:
        box = page.locator('canvas[data-layer="mask"]').bounding_box()
        assert box is not None
        return float(box["width"])

    def stage_fits() -> str:
        """The image fills the stage less its 12 px margin (view.ts fitView)."""
        return (
            "() => { const s = document.querySelector('.stage').getBoundingClientRect();"
            " const m = document.querySelector('canvas[data-layer=mask]').getBoundingClientRect();"
            " const scale = Math.min((s.width - 24) / m.width, (s.height - 24) / m.height);"
            " return Math.abs(scale - 1) < 0.02; }"
        )

    page.wait_for_function(stage_fits())
    narrow = mask_width()
    page.set_viewport_size({"width": 1280, "height": 900})
    page.wait_for_function(stage_fits())
    assert mask_width() > narrow * 1.2

    # Zoomed by the user: a resize keeps the zoom; F fits again.
    larger = mask_width() * 1.1
    page.keyboard.press("=")  # zoom in (the + key unshifted)
    page.wait_for_function(
        "(w) => document.querySelector('canvas[data-layer=mask]')"
        ".getBoundingClientRect().width > w",
        arg=larger,
    )
    zoomed = mask_width()
    page.set_viewport_size({"width": 1000, "height": 800})
    page.wait_for_timeout(200)
    assert abs(mask_width() - zoomed) < 1
    page.keyboard.press("f")
    page.wait_for_function(stage_fits())


def test_expired_session_says_so_and_keeps_the_unsaved_work(
    server: Server, admin: httpx.Client, page: Page
) -> None:
    project = labeling_project(server, admin)
    queried = project.images[0]
    log_in(page, server.base_url, project.annotator)
    first = wait_paintable(page)
    workspace = WorkspacePage(page, project.width, project.height)
    y, x0, _, _ = widest_row_run(queried, minimum=1)
    workspace.click(x0, y)
    assert workspace.progress()[0] == 1

    page.context.clear_cookies()  # the session ends (as when it times out)
    workspace.press("Enter")
    workspace.press("Enter")  # submit with unlabeled superpixels: refused with 401
    page.wait_for_url("**/login**")
    notice = page.locator('[data-notice="expired"]')
    expect(notice).to_contain_text("Your session expired")
    expect(notice).to_contain_text("unsaved work was kept")

    page.fill('input[name="email"]', project.annotator)
    page.fill('input[name="password"]', PASSWORD)
    page.click('button[type="submit"]')
    assert wait_paintable(page) == first
    assert workspace.progress()[0] == 1, "the draft must come back after signing in again"
    # A plain visit to the login page says nothing about an expiry.
    page.goto(f"{server.base_url}/login")
    expect(page.locator('input[name="email"]')).to_be_visible()
    expect(page.locator('[data-notice="expired"]')).to_have_count(0)


def test_previous_reopens_the_image_just_submitted(
    server: Server, admin: httpx.Client, page: Page
) -> None:
    project = labeling_project(server, admin, images=2)
    log_in(page, server.base_url, project.annotator)
    first = wait_paintable(page)
    expect(page.locator('[data-action="previous"]')).to_have_count(0)
    image = next(i for i in project.images if i.query_id == first)
    workspace = WorkspacePage(page, project.width, project.height)
    y, x0, x1, _ = widest_row_run(image, minimum=2)
    workspace.press("2")
    workspace.click(x0, y)
    workspace.press("Enter")
    workspace.press("Enter")  # submit with unlabeled superpixels
    second = wait_paintable(page, previous=str(first))

    # P (or the button) reopens the submitted image with what was saved; a new save of it
    # is its next version.
    expect(page.locator('[data-action="previous"]')).to_be_visible()
    workspace.press("p")
    assert wait_paintable(page, previous=str(second)) == first
    assert workspace.progress()[0] == 1
    expect(page.locator('[data-action="previous"]')).to_have_count(0)
    workspace.click(x1, y)
    workspace.press("Enter")
    workspace.press("Enter")
    assert wait_paintable(page, previous=str(first)) == second

    mask, version, history, _ = stored_state(server, image.image_id)
    assert version == 2
    assert [row.clicks for row in history] == [1, 1]  # each save counts its own session
    # Both fills: the first save's (class key 2) and the reopened image's (class 1 again).
    assert (mask[image.pixels_of(int(image.labels[y, x0]))] == 1).all()
    assert (mask[image.pixels_of(int(image.labels[y, x1]))] == 0).all()


def outline_rgba(page: Page, x: int, y: int, image_width: int) -> list[int]:
    """The outline overlay's pixel on the lower edge of image pixel (x, y): the last stage
    row whose centre still lies in image row y (outlines are drawn in screen pixels)."""
    rgba: list[int] = page.evaluate(
        """async ([x, y, imageWidth]) => {
            const frame = () => new Promise((done) => requestAnimationFrame(() => done()));
            const canvas = document.querySelector('canvas[data-layer="outlines"]');
            await frame();
            // Drawn for the current view (a CSS transform carries it while the view moves).
            for (let k = 0; k < 300 && canvas.style.transform !== ""; k++) await frame();
            const stage = document.querySelector(".stage").getBoundingClientRect();
            const layer = document.querySelector('canvas[data-layer="mask"]');
            const mask = layer.getBoundingClientRect();
            const scale = mask.width / imageWidth;
            const sx = Math.floor(mask.left - stage.left + (x + 0.5) * scale);
            const sy = Math.ceil(mask.top - stage.top + (y + 1) * scale - 0.5) - 1;
            return Array.from(canvas.getContext("2d").getImageData(sx, sy, 1, 1).data);
        }""",
        [x, y, image_width],
    )
    return rgba


def test_keyboard_painting_fills_the_highlighted_superpixel_and_moves_on(
    server: Server, admin: httpx.Client, page: Page
) -> None:
    project = labeling_project(server, admin)
    queried = project.images[0]
    log_in(page, server.base_url, project.annotator)
    wait_paintable(page)
    workspace = WorkspacePage(page, project.width, project.height)
    box = page.locator(".target-box")
    expect(box).to_be_hidden()

    # N zooms to an unlabeled queried superpixel and outlines it on screen.
    workspace.press("n")
    expect(box).to_be_visible()
    first = int(box.get_attribute("data-superpixel") or -1)
    assert first in queried.queried
    ys, xs = queried.pixels_of(first).nonzero()
    outline = box.bounding_box()
    assert outline is not None
    for x, y in ((xs.min(), ys.min()), (xs.max(), ys.max())):
        sx, sy = workspace.to_screen(int(x), int(y))
        assert outline["x"] <= sx <= outline["x"] + outline["width"]
        assert outline["y"] <= sy <= outline["y"] + outline["height"]

    # Its outline is bright yellow while unfinished, a quiet green once filled.
    region = queried.pixels_of(first)
    edge = region & ~np.pad(region, 1)[2:, 1:-1]  # pixels whose lower neighbour is outside
    ey, ex = (int(v[0]) for v in edge.nonzero())
    assert outline_rgba(page, ex, ey, project.width) == [255, 214, 0, 255]

    # A fills it with the current class ("car", key 4 -> index 3) and moves to the next.
    workspace.press("4")
    workspace.press("a")
    done = outline_rgba(page, ex, ey, project.width)  # premultiplied alpha: +-2 rounding
    assert max(abs(a - b) for a, b in zip(done, [76, 195, 138, 210], strict=True)) <= 2, done
    expect(box).not_to_have_attribute("data-superpixel", str(first))
    second = int(box.get_attribute("data-superpixel") or -1)
    workspace.press("a")
    assert workspace.progress()[0] == 2
    expect(page.locator('[data-stat="clicks"]')).to_have_text("2 clicks")

    saves = mask_saves(page)
    workspace.press("Enter")
    workspace.press("Enter")
    expect(page.locator(f'[data-empty="{project.project_id}"]')).to_be_visible()
    assert [body["fills"] for _, body in saves] == [sorted([[first, 3], [second, 3]])]
