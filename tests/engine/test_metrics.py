import numpy as np
import pytest

from worker.engine.metrics import confusion_matrix, iou_per_class, mean_iou


def test_miou_matches_hand_computed_confusion_matrix_with_ignore() -> None:
    target = np.array([[0, 0, 1, 1], [2, 2, 9, 9]])
    prediction = np.array([[0, 1, 1, 1], [2, 0, 2, 0]])
    matrix = confusion_matrix(prediction, target, num_classes=3, ignore_index=9)
    expected = np.array([[1, 1, 0], [0, 2, 0], [1, 0, 1]])
    np.testing.assert_array_equal(matrix, expected)
    # class 0: tp 1, union 1+1+1 = 3; class 1: tp 2, union 3; class 2: tp 1, union 2
    np.testing.assert_allclose(iou_per_class(matrix), [1 / 3, 2 / 3, 1 / 2])
    assert mean_iou(matrix) == pytest.approx((1 / 3 + 2 / 3 + 1 / 2) / 3)


def test_absent_class_is_left_out_of_the_mean() -> None:
    matrix = confusion_matrix(np.array([0, 0]), np.array([0, 0]), num_classes=3)
    assert np.isnan(iou_per_class(matrix)[1])
    assert mean_iou(matrix) == 1.0


def test_prediction_out_of_range_is_an_error() -> None:
    with pytest.raises(ValueError, match="outside"):
        confusion_matrix(np.array([5]), np.array([0]), num_classes=3)
