import numpy as np
import pytest
from scipy import ndimage

from worker.engine.superpixels import compute_superpixels
from worker.simulation.synthetic import generate_scene


@pytest.fixture(scope="module")
def scene() -> np.ndarray:
    image, _ = generate_scene(96, 128, np.random.default_rng(0))
    return image


@pytest.mark.parametrize("algorithm", ["slic", "felzenszwalb"])
def test_superpixels_are_contiguous_int32_and_connected(scene: np.ndarray, algorithm: str) -> None:
    labels = compute_superpixels(scene, size=16, algorithm=algorithm)
    assert labels.dtype == np.int32
    assert labels.shape == scene.shape[:2]
    count = int(labels.max()) + 1
    assert np.array_equal(np.unique(labels), np.arange(count))
    for label in range(count):
        _, components = ndimage.label(labels == label)
        assert components == 1, f"superpixel {label} is split into {components} parts"


def test_slic_count_follows_size() -> None:
    rows, cols = np.mgrid[0:96, 0:128]
    gradient = np.stack([rows * 2, cols * 2, (rows + cols)], axis=-1).astype(np.uint8)
    small = int(compute_superpixels(gradient, size=8).max()) + 1
    large = int(compute_superpixels(gradient, size=24).max()) + 1
    assert 0.5 * 96 * 128 / 8**2 < small < 1.5 * 96 * 128 / 8**2
    assert 0.5 * 96 * 128 / 24**2 < large < 1.5 * 96 * 128 / 24**2


def test_superpixels_validate_input(scene: np.ndarray) -> None:
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        compute_superpixels(scene[..., 0])
    with pytest.raises(ValueError, match="uint8"):
        compute_superpixels(scene.astype(np.float32))
    with pytest.raises(ValueError, match="size"):
        compute_superpixels(scene, size=1)
    with pytest.raises(ValueError, match="unknown superpixel algorithm"):
        compute_superpixels(scene, algorithm="seeds")
