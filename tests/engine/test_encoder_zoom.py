"""``encoder_zoom=2``: the encoder sees the image upsampled 2x, the decoder keeps its grid."""

import copy
from dataclasses import replace

import numpy as np
import pytest
import torch

from tests.engine.test_pretrained import LITE0, _partial, _scenes
from worker.engine.evaluation import evaluate_confusion, evaluate_confusion_encoded
from worker.engine.features import encode_images, encoder_fingerprint
from worker.engine.model import ModelConfig, PretrainedSegmenter, build_model, images_to_tensor
from worker.engine.scoring import score_encoded, score_images
from worker.engine.training import UNLABELED, TrainConfig, train_on_features

CPU = torch.device("cpu")
ZOOMED = replace(LITE0, encoder_zoom=2)


@pytest.fixture(scope="module")
def zoomed() -> PretrainedSegmenter:
    torch.manual_seed(0)
    model = build_model(ZOOMED)
    assert isinstance(model, PretrainedSegmenter)
    return model


def test_the_decoder_keeps_its_grid_and_sees_finer_features(zoomed: PretrainedSegmenter) -> None:
    plain = build_model(LITE0)
    assert isinstance(plain, PretrainedSegmenter)
    images, _ = _scenes(2, 48, 64, seed=1)
    batch = images_to_tensor(torch.from_numpy(np.stack(images)))
    plain_maps, zoomed_maps = plain.encode(batch), zoomed.encode(batch)
    # The finest map is dropped; the rest sit one stride deeper in the 2x image, i.e. on the
    # grids the plain encoder's maps have (strides 4..16 of the image, and 32 of the 2x one).
    assert len(zoomed_maps) == len(plain_maps) - 1
    for plain_map, zoomed_map in zip(plain_maps[:-1], zoomed_maps, strict=True):
        assert zoomed_map.shape[-2:] == plain_map.shape[-2:]
    assert not torch.equal(zoomed_maps[0], plain_maps[1])  # other features, not a copy
    with torch.no_grad():
        assert zoomed.trunk(batch).shape == plain.trunk(batch).shape == (2, 16, 12, 16)
        assert zoomed(batch).shape == (2, 4, 48, 64)


def test_zoomed_cached_features_score_and_evaluate_like_the_whole_model(
    zoomed: PretrainedSegmenter,
) -> None:
    images, truths = _scenes(3, 48, 64, seed=3)
    masks = [_partial(t) for t in truths]
    encoded = encode_images(zoomed, images, CPU, batch_size=2)
    model = copy.deepcopy(zoomed)
    config = TrainConfig(iterations=4, batch_size=2, learning_rate=1e-2, flips=False)
    result = train_on_features(model, encoded, masks, config, np.random.default_rng(7))
    assert np.isfinite(result.losses).all()
    superpixels = [np.arange(48 * 64).reshape(48, 64) // 64 for _ in images]
    labeled = [m != UNLABELED for m in masks]
    torch.manual_seed(11)
    from_images = list(
        score_images(model, images, superpixels, labeled, method="bald", samples=4, device=CPU)
    )
    torch.manual_seed(11)
    from_cache = list(
        score_encoded(model, encoded, superpixels, labeled, method="bald", samples=4, device=CPU)
    )
    for a, b in zip(from_images, from_cache, strict=True):
        np.testing.assert_allclose(b.superpixel_scores, a.superpixel_scores, rtol=1e-4, atol=1e-6)
    np.testing.assert_array_equal(
        evaluate_confusion_encoded(model, encoded, truths, 4, CPU),
        evaluate_confusion(model, images, truths, 4, CPU),
    )


def test_zoom_is_part_of_the_feature_key_and_is_validated(zoomed: PretrainedSegmenter) -> None:
    assert encoder_fingerprint(zoomed, (180, 240)) != encoder_fingerprint(
        build_model(LITE0), (180, 240)
    )
    assert encoder_fingerprint(zoomed, (180, 240)) == encoder_fingerprint(
        build_model(ZOOMED), (180, 240)
    )
    with pytest.raises(ValueError, match="encoder_zoom must be one of"):
        ModelConfig(num_classes=4, kind="efficientnet_lite0", encoder_zoom=3)
    with pytest.raises(ValueError, match="encoder_zoom"):
        ModelConfig(num_classes=4, kind="unet", encoder_zoom=2)
