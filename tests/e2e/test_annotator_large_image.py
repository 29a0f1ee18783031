"""A large image (over 4 Mpx) in the annotator: drawn at screen resolution, painted exactly.

Large images take the workspace's viewport path (frontend/src/annotator/viewport.ts): no
canvas as large as the image, the mask sampled at screen resolution. This checks that it is
engaged, that the server's preview is what makes the task paintable and the full image,
downloaded after, replaces it on screen, that a fill and a brush stroke land in the stored
mask pixel for pixel as shown on screen, and that submitting opens the next image.
"""

from __future__ import annotations

import base64
import io

import httpx
import numpy as np
from numpy.typing import NDArray
from PIL import Image as PILImage
from playwright.sync_api import Page, expect
from scipy import ndimage

from core.masks import UNLABELED
from tests.e2e.scenario import labeling_project
from tests.e2e.server import Server
from tests.e2e.test_annotator import mask_saves, stored_state
from tests.e2e.workspace_page import WorkspacePage, interior_point, log_in, wait_paintable

# Just over the 4 Mpx where the viewport path starts (viewport.ts LARGE_IMAGE_PIXELS).
WIDTH, HEIGHT = 2100, 2000
SUPERPIXEL_SIZE = 64
BRUSH = SUPERPIXEL_SIZE // 4  # the workspace's default brush


def roomiest(labels: NDArray[np.int32], candidates: list[int]) -> list[tuple[int, int, int, int]]:
    """(superpixel, x, y, depth) of each candidate's most interior pixel, roomiest first;
    searched in each superpixel's bounding box (whole-image masks are slow at 4 Mpx)."""
    boxes = ndimage.find_objects(labels + 1)
    found = []
    for superpixel in candidates:
        box = boxes[superpixel]
        assert box is not None
        x, y, depth = interior_point(labels[box] == superpixel)
        found.append((superpixel, x + box[1].start, y + box[0].start, depth))
    return sorted(found, key=lambda row: -row[3])


def screen_layer(page: Page, layer: str = "mask") -> NDArray[np.uint8]:
    """An on-screen layer's canvas (stage-sized on this path), (H, W, 4)."""
    width, height, encoded = page.evaluate(
        """async (layer) => {
            await new Promise((done) => requestAnimationFrame(() => done()));
            const canvas = document.querySelector(`canvas[data-layer="${layer}"]`);
            const { width, height } = canvas;
            const data = canvas.getContext("2d").getImageData(0, 0, width, height).data;
            let binary = "";
            for (let k = 0; k < data.length; k += 0x8000) {
                binary += String.fromCharCode(...data.subarray(k, k + 0x8000));
            }
            return [width, height, btoa(binary)];
        }""",
        layer,
    )
    raw = np.frombuffer(base64.b64decode(encoded), dtype=np.uint8)
    return raw.reshape(height, width, 4)


def decoded_rgb(data: bytes) -> NDArray[np.uint8]:
    with PILImage.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGB"))


def assert_photo_is_full_resolution(page: Page, admin: httpx.Client, image_path: str) -> None:
    """Zoomed in, the photo layer shows the stored image's own pixels, not its preview's."""
    full = decoded_rgb(admin.get(f"{image_path}/file").raise_for_status().content)
    preview = decoded_rgb(admin.get(f"{image_path}/preview").raise_for_status().content)
    photo = screen_layer(page, "image")
    stage = page.locator(".stage").bounding_box()
    frame = page.locator("[data-image-frame]").bounding_box()
    assert stage is not None and frame is not None
    scale = frame["width"] / WIDTH
    assert scale >= 2, "pixels drawn crisp, each over several stage pixels"
    # The image pixel under each stage pixel's centre (as ViewportLayers draws it).
    xs = np.floor((np.arange(photo.shape[1]) + 0.5 - (frame["x"] - stage["x"])) / scale)
    ys = np.floor((np.arange(photo.shape[0]) + 0.5 - (frame["y"] - stage["y"])) / scale)
    columns, rows = xs.astype(int), ys.astype(int)
    inside_x = (columns >= 0) & (columns < WIDTH)
    inside_y = (rows >= 0) & (rows < HEIGHT)
    shown = photo[inside_y][:, inside_x, :3].astype(int)
    iy, ix = rows[inside_y], columns[inside_x]
    expected = full[iy][:, ix].astype(int)
    ph, pw = preview.shape[:2]
    previewed = preview[iy * ph // HEIGHT][:, ix * pw // WIDTH].astype(int)
    assert shown.size > 0
    # The scene's per-pixel noise (sd 6) is smoothed away in the preview.
    assert np.abs(shown - expected).mean() < 1.0
    assert np.abs(shown - previewed).mean() > 2.0


def test_large_image_is_drawn_at_screen_size_and_painted_exactly(
    server: Server, admin: httpx.Client, page: Page
) -> None:
    project = labeling_project(
        server, admin, width=WIDTH, height=HEIGHT, images=2, superpixel_size=SUPERPIXEL_SIZE
    )
    queried = project.images[0]
    log_in(page, server.base_url, project.annotator)
    first_query = wait_paintable(page)
    if first_query != queried.query_id:
        queried = project.images[1]
    assert first_query == queried.query_id
    workspace = WorkspacePage(page, WIDTH, HEIGHT)

    # The viewport path: the mask canvas is the stage's size, not the image's.
    canvas_width = page.evaluate("document.querySelector('canvas[data-layer=mask]').width")
    stage_width = page.evaluate("document.querySelector('.stage').getBoundingClientRect().width")
    assert canvas_width == int(stage_width) < WIDTH

    # Paintable from the server's preview; the full image is asked for only after that, and
    # replaces the preview (marked by the workspace once drawn).
    image_path = f"/projects/{project.project_id}/images/{queried.image_id}"
    page.wait_for_function(
        "(name) => performance.getEntriesByName(name).length > 0",
        arg=f"tessera:full-image:{first_query}",
    )
    paintable_at, previews, files = page.evaluate(
        """([query, path]) => {
            const starts = (suffix) => performance.getEntriesByType("resource")
                .filter((entry) => new URL(entry.name).pathname.endsWith(path + suffix))
                .map((entry) => entry.startTime);
            const paintable = performance.getEntriesByName(`tessera:paintable:${query}`)[0];
            return [paintable.startTime, starts("/preview"), starts("/file")];
        }""",
        [first_query, image_path],
    )
    assert len(previews) == 1 and len(files) == 1
    assert previews[0] < paintable_at <= files[0]

    (first, ax, ay, _), (second, bx, by, b_depth) = roomiest(queried.labels, queried.queried)[:2]
    assert b_depth >= BRUSH // 2 + 4, "the seeded superpixel is too thin for the brush"
    # Fill `first` with "road" (key 3 -> class 2).
    workspace.press("3")
    workspace.click(ax, ay)
    # Zoom in on `second` (1:1 or more) and brush "car" (key 4 -> class 3) across it.
    for _ in range(8):
        page.mouse.move(*workspace.to_screen(bx, by))
        page.mouse.wheel(0, -400)
    assert_photo_is_full_resolution(page, admin, image_path)
    workspace.press("b")
    workspace.press("4")
    workspace.stroke([(bx - 3, by), (bx + 3, by)])
    assert workspace.progress()[0] == 1

    # What the screen shows, and where the image lies on it, before saving.
    shown = screen_layer(page)
    stage = page.locator(".stage").bounding_box()
    frame = page.locator("[data-image-frame]").bounding_box()
    assert stage is not None and frame is not None
    scale = frame["width"] / WIDTH
    assert scale >= 1, "zoomed in to at least one stage pixel per image pixel"
    saves = mask_saves(page)
    workspace.press("Enter")
    expect(page.locator('[data-modal="confirm-submit"]')).to_be_visible()
    workspace.press("Enter")
    second_query = wait_paintable(page, previous=str(first_query))
    assert second_query != first_query

    ((method, body),) = saves
    assert method == "PATCH" and body["fills"] == [[first, 2]]
    assert body["runs"] and {value for _, _, value in body["runs"]} == {3}
    mask, version, _, _ = stored_state(server, queried.image_id)
    assert version == 1
    runs = np.zeros(WIDTH * HEIGHT, dtype=bool)
    for offset, length, _ in body["runs"]:
        runs[offset : offset + length] = True
    brushed = runs.reshape(HEIGHT, WIDTH)
    # The stroke's pixels, inside its superpixel only; the fill exactly its superpixel.
    assert brushed[by, bx - 3 : bx + 4].all()
    assert not (brushed & (queried.labels != second)).any()
    expected = np.full((HEIGHT, WIDTH), UNLABELED, dtype=np.uint8)
    expected[queried.labels == first] = 2
    expected[brushed] = 3
    assert np.array_equal(mask, expected)

    # Around the stroke, the stage pixel over each image pixel's centre showed its stored
    # class (zoomed in, that stage pixel's own centre lies in the same image pixel).
    car = project.class_colour(3)
    checked = 0
    for y in range(by - BRUSH, by + BRUSH + 1):
        for x in range(bx - 3 - BRUSH, bx + 4 + BRUSH):
            sx = int(np.floor(frame["x"] - stage["x"] + (x + 0.5) * scale))
            sy = int(np.floor(frame["y"] - stage["y"] + (y + 0.5) * scale))
            if not (0 <= sy < shown.shape[0] and 0 <= sx < shown.shape[1]):
                continue
            painted = tuple(int(v) for v in shown[sy, sx, :3]) == car and shown[sy, sx, 3] > 0
            assert painted == (mask[y, x] == 3), (x, y)
            checked += 1
    assert checked > 0
