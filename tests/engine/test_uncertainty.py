import math

import pytest
import torch

from worker.engine.model import ModelConfig, build_model
from worker.engine.uncertainty import (
    SoftmaxMoments,
    mc_softmax_moments,
    pixel_scores_from_moments,
    pixel_uncertainty,
)


def _model(decoder_dropout: float = 0.0) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model(
        ModelConfig(num_classes=4, width=8, depth=2, decoder_dropout=decoder_dropout)
    )


def test_mc_dropout_passes_vary() -> None:
    model = _model()
    images = torch.randn(1, 3, 24, 24)
    moments = mc_softmax_moments(model, images, samples=10)
    bald = pixel_scores_from_moments(moments, "bald")
    # Mutual information is zero only if every pass agreed: dropout must be live.
    assert bald.max() > 1e-6
    first = mc_softmax_moments(model, images, samples=1).mean_probs
    second = mc_softmax_moments(model, images, samples=1).mean_probs
    assert not torch.allclose(first, second)


def test_cheap_path_equals_full_passes_when_dropout_is_only_in_head() -> None:
    model = _model()
    images = torch.randn(2, 3, 20, 28)
    torch.manual_seed(5)
    cheap, _ = pixel_uncertainty(model, images, "bald", samples=6, cheap=True)
    torch.manual_seed(5)
    full, _ = pixel_uncertainty(model, images, "bald", samples=6, cheap=False)
    torch.testing.assert_close(cheap, full, rtol=1e-5, atol=1e-6)


def test_cheap_path_differs_when_the_trunk_has_dropout() -> None:
    model = _model(decoder_dropout=0.5)
    images = torch.randn(1, 3, 20, 28)
    torch.manual_seed(5)
    cheap, _ = pixel_uncertainty(model, images, "entropy", samples=6, cheap=True)
    torch.manual_seed(5)
    full, _ = pixel_uncertainty(model, images, "entropy", samples=6, cheap=False)
    assert not torch.allclose(cheap, full)


def test_pixel_scores_match_hand_computation() -> None:
    # Two passes at one pixel: [1, 0] and [0.5, 0.5] -> mean [0.75, 0.25].
    mean_probs = torch.tensor([0.75, 0.25]).view(1, 2, 1, 1)
    mean_entropy = torch.tensor([(0.0 + math.log(2)) / 2]).view(1, 1, 1)
    moments = SoftmaxMoments(mean_probs, mean_entropy)
    entropy_of_mean = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25))
    assert pixel_scores_from_moments(moments, "entropy").item() == pytest.approx(entropy_of_mean)
    assert pixel_scores_from_moments(moments, "bald").item() == pytest.approx(
        entropy_of_mean - math.log(2) / 2
    )
    assert pixel_scores_from_moments(moments, "margin").item() == pytest.approx(0.5)
    assert pixel_scores_from_moments(moments, "paper").item() == pytest.approx(
        (entropy_of_mean + math.log(2) / 2) / math.log(2)
    )
    with pytest.raises(ValueError, match="unknown uncertainty"):
        pixel_scores_from_moments(moments, "variance")


def test_uncertainty_leaves_model_mode_as_it_was() -> None:
    model = _model()
    model.train()
    pixel_uncertainty(model, torch.randn(1, 3, 16, 16), samples=2)
    assert model.training
