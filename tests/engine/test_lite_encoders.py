"""EfficientNet-Lite0/1/2: each package's ImageNet weights fill the encoder built from its
(width, depth) coefficients key for key, the features come at strides 2..32 with the
variant's channels, and another variant's weights file is refused, naming the file."""

import math

import numpy as np
import pytest
import torch

from worker.engine.encoders import EfficientNetLiteEncoder, read_state_dict
from worker.engine.model import (
    ModelConfig,
    PretrainedSegmenter,
    build_model,
    encoder_weights_path,
    images_to_tensor,
    model_kinds,
)
from worker.simulation.synthetic import generate_scene

# name -> (channels at strides 2, 4, 8, 16, 32; number of blocks)
VARIANTS = {
    "efficientnet_lite0": ((16, 24, 40, 112, 320), 16),
    "efficientnet_lite1": ((16, 24, 40, 112, 320), 21),
    "efficientnet_lite2": ((16, 24, 48, 120, 352), 21),
}
CLASSIFIER = ("_conv_head.", "_bn1.", "_fc.")


def test_all_three_sizes_are_model_kinds() -> None:
    assert set(VARIANTS) <= set(model_kinds())


@pytest.mark.parametrize(("kind", "shape"), VARIANTS.items(), ids=list(VARIANTS))
def test_package_weights_fill_the_encoder_and_give_features_at_strides_2_to_32(
    kind: str, shape: tuple[tuple[int, ...], int]
) -> None:
    channels, blocks = shape
    torch.manual_seed(0)
    config = ModelConfig(num_classes=3, kind=kind, decoder_channels=8)
    model = build_model(config)
    assert isinstance(model, PretrainedSegmenter)
    encoder = model.encoder
    assert isinstance(encoder, EfficientNetLiteEncoder)
    assert len(encoder._blocks) == blocks
    assert encoder.channels == channels

    path = encoder_weights_path(config)
    assert path.name.startswith(kind.replace("_", "-") + "-")  # its own package's file
    shipped = read_state_dict(path)
    state = encoder.state_dict()
    assert set(state) == {key for key in shipped if not key.startswith(CLASSIFIER)}
    for key, tensor in state.items():
        assert torch.equal(tensor, shipped[key]), key

    rng = np.random.default_rng(0)
    images = [generate_scene(180, 240, rng)[0] for _ in range(3)]
    batch = images_to_tensor(torch.from_numpy(np.stack(images)))
    with torch.no_grad():
        maps = model.encode(batch)
        logits = model.eval()(batch)
    assert [tuple(m.shape) for m in maps] == [
        (3, c, math.ceil(180 / stride), math.ceil(240 / stride))
        for c, stride in zip(channels, (2, 4, 8, 16, 32), strict=True)
    ]
    assert all(torch.isfinite(m).all() for m in maps)
    assert logits.shape == (3, 3, 180, 240)


@pytest.mark.parametrize(
    ("kind", "weights_of", "problem"),
    [
        ("efficientnet_lite2", "efficientnet_lite0", r"missing keys \['_blocks.16."),
        ("efficientnet_lite0", "efficientnet_lite2", r"unexpected keys \['_blocks.16."),
        (
            "efficientnet_lite1",
            "efficientnet_lite2",
            r"_blocks.4._project_conv.weight has shape \(48, 144, 1, 1\), "
            r"expected \(40, 144, 1, 1\)",
        ),
    ],
)
def test_another_sizes_weights_file_is_a_clear_error(
    kind: str, weights_of: str, problem: str
) -> None:
    path = encoder_weights_path(ModelConfig(num_classes=3, kind=weights_of))
    config = ModelConfig(num_classes=3, kind=kind, encoder_weights=str(path))
    with pytest.raises(ValueError, match=problem) as error:
        build_model(config)
    assert f"weights file {path} does not fit this architecture" in str(error.value)
