from pathlib import Path

import pytest
import torch

from worker.engine.model import ByteDropout, ModelConfig, build_model, resolve_device


@pytest.mark.parametrize(("height", "width"), [(32, 32), (45, 61)])
def test_unet_keeps_input_size_for_any_shape(height: int, width: int) -> None:
    model = build_model(ModelConfig(num_classes=5, width=4, depth=3)).eval()
    logits = model(torch.zeros(2, 3, height, width))
    assert logits.shape == (2, 5, height, width)


def test_initial_weights_load_from_a_local_file(tmp_path: Path) -> None:
    config = ModelConfig(num_classes=3, width=4, depth=2)
    source = build_model(config)
    torch.save(source.state_dict(), tmp_path / "weights.pt")
    loaded = build_model(config, tmp_path / "weights.pt")
    for name, tensor in source.state_dict().items():
        assert torch.equal(tensor, loaded.state_dict()[name]), name
    assert not torch.equal(
        build_model(config).classifier.weight, loaded.classifier.weight
    )  # a fresh model differs, so the load did something


def test_model_config_rejects_bad_values() -> None:
    with pytest.raises(ValueError, match="dropout"):
        ModelConfig(num_classes=3, dropout=1.0)
    with pytest.raises(ValueError, match="num_classes"):
        ModelConfig(num_classes=1)


def test_device_resolution() -> None:
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type in ("cpu", "cuda")
    with pytest.raises(ValueError, match="device must be"):
        resolve_device("tpu")


def test_byte_dropout_keeps_the_expected_share_and_scales() -> None:
    layer = ByteDropout(0.5).train()
    torch.manual_seed(0)
    out = layer(torch.ones(200_000))
    kept = out != 0
    assert abs(kept.float().mean().item() - 0.5) < 0.01
    assert torch.all(out[kept] == 2.0)
    torch.manual_seed(0)
    assert torch.equal(layer(torch.ones(200_000)), out)  # seeded like torch's own RNG
    assert torch.equal(layer.eval()(torch.ones(10)), torch.ones(10))
