"""The simulator's on-disk store of frozen-encoder features (``--feature-cache``)."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.simulation.test_simulate_models import SMALL_RUN, tessera
from worker.engine.features import encode_images
from worker.engine.model import ModelConfig, PretrainedSegmenter, build_model
from worker.simulation.feature_store import cached_encode, feature_file
from worker.simulation.synthetic import write_dataset

CPU = torch.device("cpu")


def _images(seed: int, count: int = 3) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (40, 56, 3), dtype=np.uint8) for _ in range(count)]


def test_features_are_computed_once_and_read_back_exactly(tmp_path: Path) -> None:
    model = build_model(ModelConfig(num_classes=3, kind="efficientnet_lite0"))
    images = _images(0)
    first, hit = cached_encode(images, model, CPU, tmp_path)
    assert not hit
    second, hit = cached_encode(images, model, CPU, tmp_path)
    assert hit
    assert [e.image_size for e in second] == [(40, 56)] * 3
    for computed, read in zip(first, second, strict=True):
        for a, b in zip(computed.features, read.features, strict=True):
            assert b.dtype == torch.float16
            assert torch.equal(a, b)
    # Without a store nothing is written and the features are the same.
    plain, hit = cached_encode(images, model, CPU, None)
    assert not hit
    assert torch.equal(plain[2].features[-1], second[2].features[-1])
    assert len(list(tmp_path.glob("features-*.npz"))) == 1


def test_other_images_or_encoder_weights_are_another_file(tmp_path: Path) -> None:
    model = build_model(ModelConfig(num_classes=3, kind="efficientnet_lite0"))
    images = _images(0)
    changed_pixel = [image.copy() for image in images]
    changed_pixel[1][5, 5, 0] ^= 1
    assert feature_file(tmp_path, model, changed_pixel) != feature_file(tmp_path, model, images)
    before = feature_file(tmp_path, model, images)
    assert isinstance(model, PretrainedSegmenter)
    with torch.no_grad():
        next(model.encoder.parameters()).add_(0.01)
    assert feature_file(tmp_path, model, images) != before
    # A store written under the old weights is not used for the new ones.
    cached_encode(images, build_model(model.config), CPU, tmp_path)
    encoded, hit = cached_encode(images, model, CPU, tmp_path)
    assert not hit
    assert torch.equal(encoded[0].features[0], encode_images(model, images[:1], CPU)[0].features[0])


def test_a_damaged_file_is_a_clear_error(tmp_path: Path) -> None:
    model = build_model(ModelConfig(num_classes=3, kind="efficientnet_lite0"))
    images = _images(1)
    feature_file(tmp_path, model, images).write_bytes(b"not an npz")
    with pytest.raises(ValueError, match="is not a feature file"):
        cached_encode(images, model, CPU, tmp_path)


def test_simulate_reuses_the_store_and_features_only_stops(tmp_path: Path) -> None:
    data = write_dataset(tmp_path / "data", {"train": 6, "val": 3, "test": 3}, 40, 56)
    store = tmp_path / "store"
    common: list[str | Path] = [
        "simulate", "--data", data, *SMALL_RUN, "--feature-cache", store, "--encoder-zoom", "2",
    ]  # fmt: skip
    warm = tessera(*common, "--out", tmp_path / "warm", "--features-only")
    assert warm.returncode == 0, warm.stderr
    assert "encoder features: 12 images computed" in warm.stdout
    assert not (tmp_path / "warm" / "rounds.jsonl").exists()
    assert len(list(store.glob("features-*.npz"))) == 3  # pool, test, val
    run = tessera(
        *common, "--out", tmp_path / "run",
        "--iterations", "2", "--finetune-iterations", "2", "--full-iterations", "2",
        "--warmup-iterations", "1", "--no-keep-previous-model",
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert f"encoder features: 12 images read from {store}" in run.stdout
    assert (tmp_path / "run" / "rounds.jsonl").is_file()
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert (config["encoder_zoom"], config["warmup_iterations"]) == (2, 1)
    assert config["keep_previous_model"] is False
    # A model without a frozen encoder has no features: the same command line does nothing.
    unet = tessera(*common, "--out", tmp_path / "unet", "--model", "unet", "--features-only")
    assert unet.returncode == 0, unet.stderr
    assert "--feature-cache unused: model unet has no frozen encoder" in unet.stdout
    assert not (tmp_path / "unet" / "rounds.jsonl").exists()
