"""Driving the annotator workspace as a person would: log in, click, drag, press keys.

Image coordinates are mapped to the screen through the image's on-screen box (the element
marked ``data-image-frame``, moved by the view's CSS transform: the layer stack, or for large
images an empty box over the screen-sized layers), so the tests need no hooks inside the app.
"""

from __future__ import annotations

import base64

import numpy as np
from numpy.typing import NDArray
from playwright.sync_api import Page

from tests.e2e.server import PASSWORD

MASK_CANVAS = 'canvas[data-layer="mask"]'
IMAGE_FRAME = "[data-image-frame]"


def log_in(page: Page, base_url: str, email: str, password: str = PASSWORD) -> None:
    page.goto(f"{base_url}/")
    page.wait_for_url("**/login**")
    page.fill('input[name="email"]', email)
    page.fill('input[name="password"]', password)
    page.click('button[type="submit"]')


def wait_paintable(page: Page, previous: str | None = None) -> int:
    """Waits until a task is on screen and ready for input; returns its query id."""
    if previous is None:
        page.wait_for_function("document.body.dataset.paintable !== undefined")
    else:
        page.wait_for_function(
            f"document.body.dataset.paintable !== undefined "
            f"&& document.body.dataset.paintable !== '{previous}'"
        )
    return int(page.evaluate("document.body.dataset.paintable"))


def interior_point(region: NDArray[np.bool_]) -> tuple[int, int, int]:
    """(x, y, depth): a pixel of ``region`` farthest from its outside (chessboard distance)."""
    current = region.copy()
    height, width = region.shape
    depth = 0
    while True:
        padded = np.pad(current, 1, constant_values=False)
        eroded = current.copy()
        for dy in range(3):
            for dx in range(3):
                eroded &= padded[dy : dy + height, dx : dx + width]
        if not eroded.any():
            break
        current = eroded
        depth += 1
    ys, xs = np.nonzero(current)
    middle = len(xs) // 2
    return int(xs[middle]), int(ys[middle]), depth


class WorkspacePage:
    def __init__(self, page: Page, width: int, height: int) -> None:
        self.page = page
        self.width = width
        self.height = height

    def to_screen(self, x: float, y: float) -> tuple[float, float]:
        """The screen point over the centre of image pixel (x, y)."""
        frame = self.page.locator(IMAGE_FRAME)
        # Builds before the frame (a bench's baseline) had the mask canvas in its place.
        box = (frame if frame.count() > 0 else self.page.locator(MASK_CANVAS)).bounding_box()
        assert box is not None
        return (
            box["x"] + (x + 0.5) * box["width"] / self.width,
            box["y"] + (y + 0.5) * box["height"] / self.height,
        )

    def click(self, x: int, y: int) -> None:
        self.page.mouse.click(*self.to_screen(x, y))

    def stroke(self, points: list[tuple[int, int]], steps: int = 4) -> None:
        """Presses the button at the first point, drags through the others, releases."""
        self.page.mouse.move(*self.to_screen(*points[0]))
        self.page.mouse.down()
        for point in points[1:]:
            self.page.mouse.move(*self.to_screen(*point), steps=steps)
        self.page.mouse.up()

    def press(self, key: str) -> None:
        self.page.keyboard.press(key)

    def progress(self) -> tuple[int, int]:
        stat = self.page.locator('[data-stat="progress"]')
        return int(stat.get_attribute("data-labeled") or -1), int(
            stat.get_attribute("data-queried") or -1
        )

    def mask_rgba(self) -> NDArray[np.uint8]:
        """The mask layer's pixels as drawn, (H, W, 4), after the pending frame."""
        encoded = self.page.evaluate(
            """async (selector) => {
                await new Promise((done) => requestAnimationFrame(() => done()));
                const canvas = document.querySelector(selector);
                const { width, height } = canvas;
                const data = canvas.getContext("2d").getImageData(0, 0, width, height).data;
                let binary = "";
                for (let k = 0; k < data.length; k += 0x8000) {
                    binary += String.fromCharCode(...data.subarray(k, k + 0x8000));
                }
                return btoa(binary);
            }""",
            MASK_CANVAS,
        )
        raw = np.frombuffer(base64.b64decode(encoded), dtype=np.uint8)
        return raw.reshape(self.height, self.width, 4)
