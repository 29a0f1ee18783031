"""Scoring helpers shared by the service: batching, score scaling, and image scores."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from worker.engine.model import ModelConfig, build_model
from worker.engine.scoring import (
    equal_shape_batches,
    max_pixel_score,
    quantize_scores,
    score_images,
)


def test_batches_break_at_shape_changes_and_size() -> None:
    shapes = [(4, 4), (4, 4), (4, 4), (2, 2), (4, 4)]
    assert equal_shape_batches(shapes, 2) == [[0, 1], [2], [3], [4]]


def test_quantized_scores_span_zero_to_255_of_the_method_maximum() -> None:
    maximum = max_pixel_score("entropy", 4)
    assert maximum == pytest.approx(math.log(4))
    scores = np.array([[0.0, maximum / 2], [maximum, 2 * maximum]])
    assert quantize_scores(scores, maximum).tolist() == [[0, 128], [255, 255]]


def test_labeled_pixels_leave_superpixel_and_image_scores() -> None:
    torch.manual_seed(0)
    model = build_model(ModelConfig(num_classes=3, width=4, depth=1))
    image = np.random.default_rng(0).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    superpixels = np.repeat(np.arange(2), 32).reshape(8, 8)  # top half 0, bottom half 1
    labeled = superpixels == 0
    [result] = score_images(
        model,
        [image],
        [superpixels],
        [labeled],
        method="entropy",
        samples=3,
        device=torch.device("cpu"),
    )
    assert np.isnan(result.superpixel_scores[0]) and result.superpixel_scores[1] > 0
    assert result.image_score == pytest.approx(float(result.pixel_scores[~labeled].mean()))
