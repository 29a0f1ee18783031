"""Scoring helpers shared by the service: batching, score scaling, and image scores."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from worker.engine.model import ModelConfig, build_model
from worker.engine.reductions import class_balance_weights
from worker.engine.scoring import (
    equal_shape_batches,
    image_uncertainty,
    max_pixel_score,
    quantize_scores,
    score_images,
)
from worker.engine.strategies import dynamic_query, select_images


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


def _field_images() -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Image A: uncertain soil (class 0) with a small, confident plant (class 1);
    image B: confident soil with a large, fairly uncertain plant."""
    scores_a = np.full((6, 6), 0.9)
    predicted_a = np.zeros((6, 6), np.int64)
    predicted_a[:2, :2] = 1
    scores_a[:2, :2] = 0.1
    scores_b = np.full((6, 6), 0.05)
    predicted_b = np.zeros((6, 6), np.int64)
    predicted_b[:, 3:] = 1
    scores_b[:, 3:] = 0.5
    return [scores_a, scores_b], [predicted_a, predicted_b]


def test_foreground_image_score_changes_which_image_is_picked() -> None:
    scores, predicted = _field_images()
    superpixels = np.repeat(np.arange(6), 6).reshape(6, 6)  # one row per superpixel
    labeled = np.zeros((6, 6), bool)

    def pick(**options: object) -> int:
        image_scores = np.array(
            [
                image_uncertainty(s, p, superpixels, labeled, **options).image_score  # type: ignore[arg-type]
                for s, p in zip(scores, predicted, strict=True)
            ]
        )
        return int(select_images(image_scores, 1, np.random.default_rng(0))[0])

    assert pick() == 0  # mean uncertainty: image A's soil
    assert pick(image_score_mode="foreground", background_classes=[0]) == 1
    # B: plant pixels score 0.5 and are half the image.
    [_, b] = [
        image_uncertainty(s, p, superpixels, labeled, image_score_mode="foreground",
                          background_classes=[0])
        for s, p in zip(scores, predicted, strict=True)
    ]  # fmt: skip
    assert b.image_score == pytest.approx(0.5 * 0.5)
    with pytest.raises(ValueError, match="background class"):
        image_uncertainty(
            scores[0], predicted[0], superpixels, labeled, image_score_mode="foreground"
        )
    with pytest.raises(ValueError, match="unknown image score"):
        image_uncertainty(scores[0], predicted[0], superpixels, labeled, image_score_mode="max")


def test_class_weights_move_the_dynamic_query_to_the_rare_predicted_class() -> None:
    pixel_scores = np.array([[0.8, 0.8], [0.5, 0.5], [0.1, 0.1], [0.1, 0.1]])
    predicted = np.array([[0, 0], [1, 1], [0, 0], [0, 0]])
    superpixels = np.repeat(np.arange(4), 2).reshape(4, 2)
    labeled = np.zeros((4, 2), bool)
    plain = image_uncertainty(pixel_scores, predicted, superpixels, labeled)
    assert dynamic_query(plain.superpixel_scores).tolist() == [0, 1]
    weights = class_balance_weights(np.array([5000, 10]))  # class 1 rarely labeled
    balanced = image_uncertainty(
        pixel_scores, predicted, superpixels, labeled, class_weights=weights
    )
    assert dynamic_query(balanced.superpixel_scores).tolist() == [1]
    np.testing.assert_array_equal(balanced.pixel_scores, plain.pixel_scores)


def test_score_images_uses_the_foreground_score_when_set() -> None:
    torch.manual_seed(0)
    model = build_model(ModelConfig(num_classes=3, width=4, depth=1))
    image = np.random.default_rng(1).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    superpixels = np.repeat(np.arange(4), 16).reshape(8, 8)
    labeled = np.zeros((8, 8), bool)
    options = {"method": "entropy", "samples": 3, "device": torch.device("cpu")}
    [mean] = score_images(model, [image], [superpixels], [labeled], **options)  # type: ignore[arg-type]
    torch.manual_seed(0)
    model = build_model(ModelConfig(num_classes=3, width=4, depth=1))
    [result] = score_images(
        model, [image], [superpixels], [labeled], image_score_mode="foreground",
        background_classes=[int(np.bincount(mean.predicted.ravel()).argmax())], **options,  # type: ignore[arg-type]
    )  # fmt: skip
    foreground = result.predicted != int(np.bincount(mean.predicted.ravel()).argmax())
    expected = result.pixel_scores[foreground].mean() * foreground.mean() if foreground.any() else 0
    assert result.image_score == pytest.approx(float(expected), rel=1e-5)
    assert result.image_score != pytest.approx(mean.image_score)
