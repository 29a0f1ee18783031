import numpy as np
import pytest

from worker.engine.reductions import (
    class_balance_weights,
    foreground_mask,
    image_score,
    labeled_class_counts,
    superpixel_majority_classes,
    superpixel_scores,
    unlabeled_pixel_counts,
)


def test_superpixel_score_ignores_labeled_pixels() -> None:
    pixel_scores = np.array([[1.0, 3.0, 5.0, 5.0], [1.0, 9.0, 5.0, 5.0]])
    superpixels = np.array([[0, 0, 1, 1], [0, 0, 1, 1]])
    labeled = np.array([[False, False, True, True], [False, True, True, True]])
    scores = superpixel_scores(pixel_scores, superpixels, labeled)
    assert scores[0] == pytest.approx((1 + 3 + 1) / 3)  # the labeled 9 is left out
    assert np.isnan(scores[1])  # nothing left to ask there
    assert superpixel_scores(pixel_scores, superpixels)[0] == pytest.approx(14 / 4)
    assert unlabeled_pixel_counts(superpixels, labeled, 2).tolist() == [3, 0]


def test_superpixel_score_rejects_mismatched_shapes() -> None:
    with pytest.raises(ValueError, match="does not match"):
        superpixel_scores(np.zeros((2, 2)), np.zeros((2, 3), int))


def test_image_score_over_unlabeled_and_foreground_variant() -> None:
    pixel_scores = np.array([[1.0, 2.0], [3.0, 10.0]])
    labeled = np.array([[False, False], [False, True]])
    assert image_score(pixel_scores, labeled) == pytest.approx(2.0)
    assert np.isnan(image_score(pixel_scores, np.ones((2, 2), bool)))
    foreground = np.array([[False, True], [True, True]])
    # mean over unlabeled foreground (2, 3) times the foreground share 2/3
    assert image_score(pixel_scores, labeled, foreground) == pytest.approx(2.5 * 2 / 3)


def test_class_balance_weights_lift_rare_classes_and_stay_one_when_balanced() -> None:
    np.testing.assert_allclose(class_balance_weights(np.array([500, 500, 500])), 1.0)
    weights = class_balance_weights(np.array([9000, 999, 0]))
    assert weights[0] < 1.0 < weights[1] < weights[2] == 10.0  # never labeled: clipped
    with pytest.raises(ValueError, match="negative"):
        class_balance_weights(np.array([3, -1]))


def test_labeled_class_counts_skip_unlabeled_and_ignored_pixels() -> None:
    masks = [np.array([[0, 1, 255], [2, 2, 11]], np.uint8), np.array([[1, 1]], np.uint8)]
    assert labeled_class_counts(masks, 3).tolist() == [1, 3, 2]


def test_foreground_mask_needs_a_background_class() -> None:
    predicted = np.array([[0, 1], [2, 0]])
    assert foreground_mask(predicted, [0]).tolist() == [[False, True], [True, False]]
    with pytest.raises(ValueError, match="background class"):
        foreground_mask(predicted, [])


def test_superpixel_majority_classes_takes_the_most_predicted_class_of_each_superpixel() -> None:
    superpixels = np.array([[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 2, 2], [2, 2, 2, 2]])
    predicted = np.array([[3, 3, 1, 0], [3, 0, 1, 1], [2, 2, 5, 5], [5, 5, 2, 2]])
    # Superpixel 2 ties 4-4 between classes 2 and 5: the lower index wins; 3 has no pixels.
    np.testing.assert_array_equal(
        superpixel_majority_classes(predicted, superpixels, 4), [3, 1, 2, 255]
    )


def test_superpixel_majority_classes_refuses_mismatched_shapes_and_big_classes() -> None:
    with pytest.raises(ValueError, match="does not match"):
        superpixel_majority_classes(np.zeros((2, 2), int), np.zeros((2, 3), int), 1)
    with pytest.raises(ValueError, match=r"not in 0\.\.254"):
        superpixel_majority_classes(np.full((2, 2), 255), np.zeros((2, 2), int), 1)
