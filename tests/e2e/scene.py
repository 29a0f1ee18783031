"""A generated street scene with its true classes: sky, building, road, car.

Big enough to look like a photo in a screenshot, deterministic for a seed, and with ground
truth so that tests can pick each superpixel's right class and build an uncertainty map.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

CLASSES = [
    ("sky", "#6fa8dc"),
    ("building", "#b45f06"),
    ("road", "#a64d79"),
    ("car", "#38d430"),
]
SKY, BUILDING, ROAD, CAR = range(4)


def street_scene(
    width: int, height: int, seed: int = 0
) -> tuple[NDArray[np.uint8], NDArray[np.uint8]]:
    """Returns (image (H, W, 3) uint8, truth (H, W) uint8 class indices)."""
    rng = np.random.default_rng(seed)
    truth = np.full((height, width), SKY, dtype=np.uint8)
    image = np.zeros((height, width, 3), dtype=np.float32)
    # Sky: a vertical gradient.
    t = (np.arange(height) / height)[:, None]
    image[..., 0] = 120 + 60 * t
    image[..., 1] = 170 + 40 * t
    image[..., 2] = 235 - 10 * t
    horizon = int(height * 0.55)
    # Buildings: blocks of random heights and colours along the horizon. Each shape is drawn
    # in its bounding box only (whole-image masks took minutes at 4000x3000).
    x = 0
    while x < width:
        block = int(rng.integers(width // 12, width // 5))
        top = int(rng.integers(int(height * 0.12), int(height * 0.4)))
        colour = rng.integers(70, 190, size=3)
        x1 = min(width, x + block)
        if top < horizon and x < x1:
            truth[top:horizon, x:x1] = BUILDING
            image[top:horizon, x:x1] = colour
            # Windows: darker squares in a grid.
            ys, xs = np.mgrid[top:horizon, x:x1]
            window = ((xs - x) % 24 < 10) & ((ys - top) % 28 < 12) & ((xs - x) > 6)
            image[top:horizon, x:x1][window] = colour * 0.45
        x += block
    # Road: dark grey below the horizon, with lane marks.
    truth[horizon:] = ROAD
    image[horizon:] = [70, 72, 78]
    middle = (horizon + height) // 2
    half = max(2, height // 120)
    lane_rows = slice(max(horizon, middle - half + 1), min(height, middle + half))
    dashes = (np.arange(width) // max(8, width // 16)) % 2 == 0
    image[lane_rows, dashes] = [225, 225, 210]
    # Cars: rounded boxes on the road.
    for _ in range(max(2, width // 200)):
        w = int(rng.integers(width // 10, width // 6))
        h = int(w * 0.45)
        cx = int(rng.integers(w, width - w))
        cy = int(rng.integers(horizon + h // 2 + 2, height - h // 2 - 2))
        box_y = slice(max(0, cy - h // 2 - 1), min(height, cy + h // 2 + 2))
        box_x = slice(max(0, cx - w // 2 - 1), min(width, cx + w // 2 + 2))
        ys, xs = np.mgrid[box_y, box_x]
        car = ((xs - cx) / (w / 2)) ** 4 + ((ys - cy) / (h / 2)) ** 4 <= 1
        truth[box_y, box_x][car] = CAR
        image[box_y, box_x][car] = rng.integers(30, 230, size=3)
    noise = rng.normal(0, 6, size=image.shape)
    return np.clip(image + noise, 0, 255).astype(np.uint8), truth


def boundary_uncertainty(truth: NDArray[np.uint8], spread: int = 8) -> NDArray[np.uint8]:
    """A stand-in for the model's uncertainty, 0..255: highest on the true class boundaries,
    fading over about ``spread`` pixels (chessboard distance), as a trained model's does."""
    edge = np.zeros(truth.shape, dtype=bool)
    edge[:, 1:] |= truth[:, 1:] != truth[:, :-1]
    edge[1:, :] |= truth[1:, :] != truth[:-1, :]
    distance = np.full(truth.shape, np.inf, dtype=np.float32)
    distance[edge] = 0
    reached = edge.copy()
    for step in range(1, 3 * spread + 1):
        padded = np.pad(reached, 1)
        grown = reached.copy()
        for dy in range(3):
            for dx in range(3):
                grown |= padded[dy : dy + truth.shape[0], dx : dx + truth.shape[1]]
        distance[grown & ~reached] = step
        reached = grown
    score = np.exp(-distance / spread)
    scaled: NDArray[np.uint8] = np.round(score * 255).astype(np.uint8)
    return scaled
