"""``encoder_zoom=2``: the encoder sees the image upsampled 2x, the decoder keeps its grid.
(That its cached features train, score and evaluate like the whole model is checked with
zoom 1's in test_pretrained.py.)"""

from dataclasses import replace

import numpy as np
import pytest
import torch

from tests.engine.test_pretrained import LITE0, _scenes
from worker.engine.features import encoder_fingerprint
from worker.engine.model import ModelConfig, PretrainedSegmenter, build_model, images_to_tensor

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
