"""The pretrained-encoder model, its cached-feature path and its weights handling."""

import copy
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from worker.engine.encoders import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    encoder_spec,
    read_state_dict,
    register_encoder,
)
from worker.engine.evaluation import evaluate_confusion, evaluate_confusion_encoded
from worker.engine.features import (
    encode_images,
    encoder_fingerprint,
    pack_encoded,
    unpack_encoded,
)
from worker.engine.model import (
    ModelConfig,
    PretrainedSegmenter,
    build_model,
    encoder_weights_path,
    images_to_tensor,
    model_kinds,
)
from worker.engine.scoring import score_encoded, score_images
from worker.engine.training import UNLABELED, TrainConfig, train_on_features, train_on_partial_masks
from worker.simulation.synthetic import generate_scene

CPU = torch.device("cpu")
LITE0 = ModelConfig(num_classes=4, kind="efficientnet_lite0", decoder_channels=16)


@pytest.fixture(scope="module")
def lite0() -> PretrainedSegmenter:
    torch.manual_seed(0)
    model = build_model(LITE0)
    assert isinstance(model, PretrainedSegmenter)
    return model


def _scenes(count: int, height: int, width: int, seed: int) -> tuple[list, list]:
    rng = np.random.default_rng(seed)
    scenes = [generate_scene(height, width, rng) for _ in range(count)]
    return [image for image, _ in scenes], [truth for _, truth in scenes]


def test_both_model_kinds_are_offered() -> None:
    assert model_kinds()[:2] == ["unet", "efficientnet_lite0"]
    assert ModelConfig(num_classes=3).kind == "unet"  # stored configs without a kind
    with pytest.raises(ValueError, match="unknown model kind 'resnet9'"):
        ModelConfig(num_classes=3, kind="resnet9")


@pytest.mark.parametrize(("height", "width"), [(64, 96), (45, 61)])
def test_shipped_weights_give_finite_logits_of_the_input_size(
    lite0: PretrainedSegmenter, height: int, width: int
) -> None:
    images, _ = _scenes(2, height, width, seed=1)
    batch = images_to_tensor(torch.from_numpy(np.stack(images)))
    with torch.no_grad():
        logits = lite0.eval()(batch)
        maps = lite0.encode(batch)
    assert logits.shape == (2, 4, height, width)
    assert torch.isfinite(logits).all()
    assert [m.shape[1] for m in maps] == [16, 24, 40, 112, 320]
    assert maps[-1].shape[-2:] == (-(-height // 32), -(-width // 32))
    # The shipped ImageNet weights, not a random init: the stem equals the file's.
    shipped = read_state_dict(encoder_weights_path(LITE0))
    assert torch.equal(
        lite0.encoder.state_dict()["_conv_stem.weight"], shipped["_conv_stem.weight"]
    )


def test_bad_weights_files_are_clear_errors(tmp_path: Path) -> None:
    shipped = encoder_weights_path(LITE0)
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(shipped.read_bytes()[:100_000])
    text = tmp_path / "notes.pth"
    text.write_text("not weights")
    unet_state = tmp_path / "unet.pth"
    torch.save(build_model(ModelConfig(num_classes=4, width=4, depth=2)).state_dict(), unet_state)
    reshaped = tmp_path / "reshaped.pth"
    state = read_state_dict(shipped)
    state["_conv_stem.weight"] = torch.zeros(8, 3, 3, 3)
    torch.save(state, reshaped)
    cases = {
        tmp_path / "absent.pth": "does not exist",
        truncated: "cannot be read as torch weights",
        text: "cannot be read as torch weights",
        unet_state: "does not fit this architecture: missing keys",
        reshaped: r"_conv_stem.weight has shape \(8, 3, 3, 3\), expected \(32, 3, 3, 3\)",
    }
    for path, problem in cases.items():
        config = ModelConfig(num_classes=4, kind="efficientnet_lite0", encoder_weights=str(path))
        with pytest.raises(ValueError, match=problem) as error:
            build_model(config)
        assert str(path) in str(error.value)


def test_a_pickled_object_is_refused_not_run(tmp_path: Path) -> None:
    path = tmp_path / "object.pth"
    torch.save({"weights": torch.zeros(2), "note": Path("code runs here")}, path)
    with pytest.raises(ValueError, match=str(path)):
        build_model(
            ModelConfig(num_classes=4, kind="efficientnet_lite0", encoder_weights=str(path))
        )


def test_a_local_weights_file_loads_like_the_package(
    lite0: PretrainedSegmenter, tmp_path: Path
) -> None:
    path = tmp_path / "lite0.pth"
    torch.save(read_state_dict(encoder_weights_path(LITE0)), path)
    local = build_model(
        ModelConfig(num_classes=4, kind="efficientnet_lite0", encoder_weights=str(path))
    )
    assert isinstance(local, PretrainedSegmenter)
    for name, tensor in lite0.encoder.state_dict().items():
        assert torch.equal(tensor, local.encoder.state_dict()[name]), name


def test_fingerprint_changes_with_weights_and_image_size(
    lite0: PretrainedSegmenter, tmp_path: Path
) -> None:
    key = encoder_fingerprint(lite0, (180, 240))
    assert key == encoder_fingerprint(build_model(LITE0), (180, 240))  # decoder init is irrelevant
    assert key != encoder_fingerprint(lite0, (360, 480))
    state = read_state_dict(encoder_weights_path(LITE0))
    state["_blocks.3._bn1.running_mean"] += 0.01
    path = tmp_path / "finetuned.pth"
    torch.save(state, path)
    changed = build_model(
        ModelConfig(num_classes=4, kind="efficientnet_lite0", encoder_weights=str(path))
    )
    assert encoder_fingerprint(changed, (180, 240)) != key
    with pytest.raises(ValueError, match="frozen encoder"):
        encoder_fingerprint(build_model(ModelConfig(num_classes=4, width=4, depth=2)), (8, 8))


def test_fingerprint_changes_with_the_input_normalisation(lite0: PretrainedSegmenter) -> None:
    key = encoder_fingerprint(lite0, (180, 240))
    shipped = encoder_spec("efficientnet_lite0")
    register_encoder("efficientnet_lite0", replace(shipped, mean=IMAGENET_MEAN, std=IMAGENET_STD))
    try:
        assert encoder_fingerprint(lite0, (180, 240)) != key
    finally:
        register_encoder("efficientnet_lite0", shipped)
    assert encoder_fingerprint(lite0, (180, 240)) == key


def test_lite0_sees_pixels_as_tensorflow_trained_it(lite0: PretrainedSegmenter) -> None:
    # EfficientNet-Lite's weights expect (x - 127) / 128, not ImageNet's mean and std.
    pixels = torch.tensor([0, 127, 255], dtype=torch.uint8).view(1, 1, 3, 1).expand(1, 1, 3, 3)
    seen = images_to_tensor(pixels.contiguous()) * lite0.input_scale + lite0.input_shift
    expected = (torch.tensor([0.0, 127.0, 255.0]) - 127.0) / 128.0
    torch.testing.assert_close(seen[0, :, 0, :], expected.expand(3, 3), rtol=0, atol=1e-6)


def test_packed_features_round_trip(lite0: PretrainedSegmenter) -> None:
    images, _ = _scenes(1, 40, 56, seed=2)
    (encoded,) = encode_images(lite0, images, CPU)
    assert all(f.dtype == torch.float16 for f in encoded.features)
    restored = unpack_encoded(pack_encoded(encoded))
    assert restored.image_size == (40, 56)
    for before, after in zip(encoded.features, restored.features, strict=True):
        assert torch.equal(before, after)
    with pytest.raises(ValueError, match="not a packed feature set"):
        unpack_encoded(b"garbage")


def _partial(truth: np.ndarray) -> np.ndarray:
    mask = np.full(truth.shape, UNLABELED, np.uint8)
    mask[:, : truth.shape[1] // 2] = truth[:, : truth.shape[1] // 2]
    return mask


@pytest.fixture(scope="module", params=[1, 2], ids=["zoom1", "zoom2"])
def lite0_at_zoom(
    request: pytest.FixtureRequest, lite0: PretrainedSegmenter
) -> PretrainedSegmenter:
    if request.param == 1:
        return lite0
    torch.manual_seed(0)
    model = build_model(replace(LITE0, encoder_zoom=request.param))
    assert isinstance(model, PretrainedSegmenter)
    return model


def test_cached_features_train_score_and_evaluate_like_the_whole_model(
    lite0_at_zoom: PretrainedSegmenter,
) -> None:
    lite0 = lite0_at_zoom
    images, truths = _scenes(4, 48, 64, seed=3)
    masks = [_partial(t) for t in truths]
    encoded = encode_images(lite0, images, CPU, batch_size=3)
    config = TrainConfig(iterations=6, batch_size=2, learning_rate=1e-2, flips=False)
    whole, cached = copy.deepcopy(lite0), copy.deepcopy(lite0)
    torch.manual_seed(5)
    whole_result = train_on_partial_masks(whole, images, masks, config, np.random.default_rng(7))
    torch.manual_seed(5)
    cached_result = train_on_features(cached, encoded, masks, config, np.random.default_rng(7))
    np.testing.assert_allclose(cached_result.losses, whole_result.losses, rtol=1e-5)
    # Adam's first steps move each weight by ~lr whatever its gradient's size, so a gradient
    # of ~0 whose sign differs by one float16 rounding (the encoder batched differently)
    # moves one weight the other way: compare the total drift with the total movement.
    drift = movement = 0.0
    for name, tensor in whole.state_dict().items():
        drift += float((cached.state_dict()[name].float() - tensor.float()).abs().sum())
        movement += float((tensor.float() - lite0.state_dict()[name].float()).abs().sum())
    assert movement > 1.0
    assert drift < 1e-3 * movement
    for name, tensor in whole.encoder.state_dict().items():  # the frozen encoder did not move
        assert torch.equal(tensor, lite0.encoder.state_dict()[name]), name

    superpixels = [np.arange(48 * 64).reshape(48, 64) // 64 for _ in images]  # one per row
    labeled = [m != UNLABELED for m in masks]
    torch.manual_seed(11)
    from_images = list(
        score_images(whole, images, superpixels, labeled, method="bald", samples=5, device=CPU)
    )
    torch.manual_seed(11)
    from_cache = list(
        score_encoded(whole, encoded, superpixels, labeled, method="bald", samples=5, device=CPU)
    )
    for a, b in zip(from_images, from_cache, strict=True):
        np.testing.assert_allclose(b.pixel_scores, a.pixel_scores, rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(b.superpixel_scores, a.superpixel_scores, rtol=1e-4, atol=1e-6)
    np.testing.assert_array_equal(
        evaluate_confusion_encoded(whole, encoded, truths, 4, CPU),
        evaluate_confusion(whole, images, truths, 4, CPU),
    )


def test_flipped_features_train_with_flipped_masks(lite0: PretrainedSegmenter) -> None:
    images, truths = _scenes(3, 32, 48, seed=4)
    encoded = encode_images(lite0, images, CPU)
    model = copy.deepcopy(lite0)
    result = train_on_features(
        model,
        encoded,
        truths,
        TrainConfig(iterations=40, batch_size=3, learning_rate=1e-2, flips=True),
        np.random.default_rng(0),
    )
    assert result.iterations_run == 40
    assert np.mean(result.losses[-5:]) < 0.8 * np.mean(result.losses[:3])
    with pytest.raises(ValueError, match="crop_size must be None"):
        train_on_features(
            model, encoded, truths, TrainConfig(crop_size=16), np.random.default_rng(0)
        )


@pytest.mark.parametrize("stop_on", ["loss", "miou"])
def test_early_stopping_on_held_out_features_records_iterations(
    lite0: PretrainedSegmenter, stop_on: str
) -> None:
    images, truths = _scenes(6, 32, 48, seed=5)
    encoded = encode_images(lite0, images, CPU)
    # The held-out split's labels are permuted: the better training fits, the worse the
    # held-out loss gets, so training must stop long before its maximum.
    wrong = [((t.astype(np.int64) + 1) % 4).astype(np.uint8) for t in truths[3:]]
    config = TrainConfig(
        iterations=400,
        batch_size=3,
        learning_rate=1e-2,
        validate_every=5,
        patience=3,
        stop_on=stop_on,
    )
    result = train_on_features(
        copy.deepcopy(lite0),
        encoded[:3],
        truths[:3],
        config,
        np.random.default_rng(0),
        validation=(encoded[3:], wrong),
    )
    assert result.stopped_early
    assert result.iterations_run < 400
    assert result.iterations_run == len(result.losses)
    assert result.best_iteration is not None
    assert result.iterations_run == result.best_iteration + 5 * config.patience
    if stop_on == "miou":
        assert result.best_validation_loss is None
        assert result.best_validation_miou is not None and 0 <= result.best_validation_miou < 1
    else:
        assert result.best_validation_loss is not None and result.best_validation_miou is None


def test_unfrozen_encoder_trains_on_images(lite0: PretrainedSegmenter) -> None:
    images, truths = _scenes(2, 32, 32, seed=6)
    config = ModelConfig(
        num_classes=4, kind="efficientnet_lite0", decoder_channels=8, freeze_encoder=False
    )
    model = build_model(config)
    before = model.encoder.state_dict()["_conv_stem.weight"].clone()
    train_on_partial_masks(
        model, images, truths, TrainConfig(iterations=2, batch_size=2), np.random.default_rng(0)
    )
    assert not torch.equal(before, model.encoder.state_dict()["_conv_stem.weight"])
    with pytest.raises(ValueError, match="frozen encoder"):
        encode_images(model, images, CPU)


def test_a_training_that_does_not_help_keeps_the_starting_weights(
    lite0: PretrainedSegmenter,
) -> None:
    images, truths = _scenes(4, 32, 48, seed=7)
    encoded = encode_images(lite0, images, CPU)
    model = copy.deepcopy(lite0)
    # A learning rate of 1.0 makes every evaluated state worse than the start.
    config = TrainConfig(
        iterations=6, batch_size=2, learning_rate=1.0, validate_every=2, patience=2
    )
    result = train_on_features(
        model,
        encoded[:2],
        truths[:2],
        config,
        np.random.default_rng(0),
        validation=(encoded[2:], truths[2:]),
    )
    assert result.best_iteration == 0
    assert result.iterations_run == 4
    for name, tensor in lite0.state_dict().items():
        assert torch.equal(model.state_dict()[name], tensor), name
