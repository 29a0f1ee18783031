"""Superpixels of big images from a downscaled copy: sizes, nearest enlargement, counts."""

from __future__ import annotations

import numpy as np
import pytest

from worker.engine.superpixels import (
    compute_superpixels,
    superpixels_from_downscaled,
    upsample_labels,
    work_shape,
)


def test_work_shape_keeps_small_images_and_fits_big_ones_with_their_aspect() -> None:
    assert work_shape(360, 480, 172_800) == (360, 480)
    height, width = work_shape(7000, 7000, 4_000_000)
    assert (height, width) == (2000, 2000)
    height, width = work_shape(1000, 3000, 30_000)
    assert height * width <= 30_000
    assert (height, width) == (100, 300)
    assert work_shape(2, 100_000, 16) == (2, 8)
    assert work_shape(100_000, 3, 16) == (8, 2)
    with pytest.raises(ValueError, match="at least 4"):
        work_shape(10, 10, 3)


def test_upsample_labels_takes_the_label_under_each_pixel_centre() -> None:
    labels = np.array([[0, 1], [2, 3]], dtype=np.uint16)
    enlarged = upsample_labels(labels, 4, 6)
    assert enlarged.dtype == np.uint16
    np.testing.assert_array_equal(
        enlarged,
        [[0, 0, 0, 1, 1, 1], [0, 0, 0, 1, 1, 1], [2, 2, 2, 3, 3, 3], [2, 2, 2, 3, 3, 3]],
    )
    # An uneven factor still keeps every input label.
    rng = np.random.default_rng(0)
    labels = rng.permutation(35).reshape(5, 7).astype(np.int32)
    assert set(np.unique(upsample_labels(labels, 13, 9)).tolist()) == set(range(35))
    with pytest.raises(ValueError, match="smaller"):
        upsample_labels(labels, 4, 7)


def test_superpixels_from_downscaled_count_matches_the_full_resolution_size() -> None:
    rows, cols = np.mgrid[0:240, 0:320]
    image = np.stack(
        [(rows * 3) % 256, (cols * 2) % 256, ((rows // 40 + cols // 40) % 2) * 200], axis=-1
    ).astype(np.uint8)
    full = compute_superpixels(image, 16)
    height, width = work_shape(240, 320, 240 * 320 // 9)
    small = image[1::3, 1::3][:height, :width]
    labels = superpixels_from_downscaled(small, 240, 320, 16)
    assert labels.shape == (240, 320)
    assert labels.dtype == np.uint16
    count = int(labels.max()) + 1
    assert set(np.unique(labels).tolist()) == set(range(count))
    assert 0.6 < count / (int(full.max()) + 1) < 1.5
