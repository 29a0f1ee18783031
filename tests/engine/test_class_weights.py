import numpy as np
import pytest

from worker.engine.training import (
    UNLABELED,
    class_weights_named,
    median_frequency_weights,
    sqrt_median_frequency_weights,
)

MASKS = [np.array([[0, 0, 0, 1], [0, 0, 1, UNLABELED]], np.uint8)]


def test_sqrt_median_frequency_weights_are_the_root_of_median_frequency() -> None:
    weights = sqrt_median_frequency_weights(MASKS, 3)
    # frequencies 5/7 and 2/7, median 3.5/7; the absent class keeps weight 0
    np.testing.assert_allclose(weights, [(3.5 / 5) ** 0.5, (3.5 / 2) ** 0.5, 0.0], rtol=1e-6)
    assert weights.dtype == np.float32


def test_class_weights_named_picks_the_weighting() -> None:
    assert class_weights_named("none", MASKS, 3) is None
    np.testing.assert_array_equal(
        class_weights_named("median", MASKS, 3), median_frequency_weights(MASKS, 3)
    )
    np.testing.assert_array_equal(
        class_weights_named("sqrt-median", MASKS, 3), sqrt_median_frequency_weights(MASKS, 3)
    )


def test_class_weights_named_rejects_an_unknown_name() -> None:
    with pytest.raises(ValueError, match="inverse"):
        class_weights_named("inverse", MASKS, 3)
