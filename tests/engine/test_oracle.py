import numpy as np
import pytest

from worker.engine.oracle import oracle_label

SUPERPIXELS = np.array([[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 2, 2]])
TRUTH = np.array([[3, 4, 1, 1], [3, 7, 1, 7], [2, 2, 7, 2]], dtype=np.uint8)


def test_exact_oracle_copies_true_pixels_of_queried_superpixels_only() -> None:
    partial = np.full(TRUTH.shape, 255, np.uint8)
    answered = oracle_label(partial, TRUTH, SUPERPIXELS, np.array([0, 2]), "exact", ignore_index=7)
    expected = np.array([[3, 4, 255, 255], [3, 255, 255, 255], [2, 2, 255, 2]], dtype=np.uint8)
    np.testing.assert_array_equal(answered, expected)
    assert (partial == 255).all()  # input untouched


def test_dominant_oracle_fills_majority_class_and_keeps_ignore_unlabeled() -> None:
    partial = np.full(TRUTH.shape, 255, np.uint8)
    answered = oracle_label(partial, TRUTH, SUPERPIXELS, np.array([0, 1]), "dominant", 7)
    expected = np.array([[3, 3, 1, 1], [3, 255, 1, 255], [255] * 4], dtype=np.uint8)
    np.testing.assert_array_equal(answered, expected)


def test_oracle_rejects_mismatched_shapes() -> None:
    with pytest.raises(ValueError, match="shapes differ"):
        oracle_label(np.zeros((2, 2), np.uint8), TRUTH, SUPERPIXELS, np.array([0]))
