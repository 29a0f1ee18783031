import numpy as np
import pytest
import torch

from worker.engine.evaluation import evaluate_confusion
from worker.engine.metrics import mean_iou
from worker.engine.model import ModelConfig, build_model
from worker.engine.training import (
    UNLABELED,
    TrainConfig,
    median_frequency_weights,
    partial_mask_loss,
    train_on_partial_masks,
)
from worker.simulation.synthetic import generate_scene


def test_loss_gives_zero_gradient_on_unlabeled_pixels() -> None:
    logits = torch.randn(1, 3, 4, 4, requires_grad=True)
    target = torch.full((1, 4, 4), UNLABELED, dtype=torch.long)
    target[0, :2, :] = 1
    partial_mask_loss(logits, target).backward()
    assert logits.grad is not None
    assert torch.all(logits.grad[0, :, 2:, :] == 0)
    assert torch.any(logits.grad[0, :, :2, :] != 0)


def test_loss_with_class_weights_also_ignores_unlabeled() -> None:
    logits = torch.randn(1, 3, 4, 4, requires_grad=True)
    target = torch.full((1, 4, 4), UNLABELED, dtype=torch.long)
    target[0, 0, :] = 2
    partial_mask_loss(logits, target, torch.tensor([1.0, 2.0, 0.5])).backward()
    assert logits.grad is not None
    assert torch.all(logits.grad[0, :, 1:, :] == 0)


def test_all_unlabeled_batch_gives_zero_loss_not_nan() -> None:
    logits = torch.randn(2, 3, 4, 4, requires_grad=True)
    loss = partial_mask_loss(logits, torch.full((2, 4, 4), UNLABELED, dtype=torch.long))
    assert loss.item() == 0.0


def test_median_frequency_weights() -> None:
    masks = [np.array([[0, 0, 0, 1], [0, 0, 1, UNLABELED]], np.uint8)]
    weights = median_frequency_weights(masks, 3)
    # frequencies 5/7 and 2/7, median 3.5/7
    np.testing.assert_allclose(weights, [3.5 / 5, 3.5 / 2, 0.0], rtol=1e-6)


def test_training_on_partial_masks_lowers_the_loss() -> None:
    rng = np.random.default_rng(0)
    scenes = [generate_scene(32, 48, rng) for _ in range(6)]
    images = [image for image, _ in scenes]
    masks = []
    for _, truth in scenes:
        partial = np.full(truth.shape, UNLABELED, np.uint8)
        partial[::2] = truth[::2]  # half the rows labeled
        masks.append(partial)
    masks.append(np.full((32, 48), UNLABELED, np.uint8))  # an unlabeled image is skipped
    images.append(images[0])
    torch.manual_seed(0)
    model = build_model(ModelConfig(num_classes=4, width=8, depth=2))
    result = train_on_partial_masks(
        model, images, masks, TrainConfig(iterations=60, batch_size=4, learning_rate=1e-2), rng
    )
    assert result.iterations_run == 60
    assert np.mean(result.losses[-10:]) < 0.7 * np.mean(result.losses[:5])


def test_early_stop_keeps_best_weights() -> None:
    rng = np.random.default_rng(1)
    image, truth = generate_scene(32, 32, rng)
    model = build_model(ModelConfig(num_classes=4, width=4, depth=2))
    config = TrainConfig(
        iterations=200, batch_size=2, validate_every=2, patience=2, learning_rate=1.0
    )
    # A huge learning rate makes validation worse quickly: training must stop and restore.
    result = train_on_partial_masks(
        model, [image], [truth], config, rng, validation=([image], [truth])
    )
    assert result.stopped_early
    assert result.iterations_run < 200
    assert result.best_validation_loss is not None


def test_training_rejects_mismatched_inputs() -> None:
    model = build_model(ModelConfig(num_classes=4, width=4, depth=2))
    with pytest.raises(ValueError, match="does not match"):
        train_on_partial_masks(
            model,
            [np.zeros((8, 8, 3), np.uint8)],
            [np.zeros((8, 9), np.uint8)],
            TrainConfig(iterations=1),
            np.random.default_rng(0),
        )
    with pytest.raises(ValueError, match="stop_on must be one of"):
        TrainConfig(stop_on="accuracy")


def test_early_stop_on_miou_keeps_the_weights_of_the_best_miou() -> None:
    rng = np.random.default_rng(2)
    scenes = [generate_scene(32, 32, rng) for _ in range(4)]
    images, truths = [s[0] for s in scenes], [s[1] for s in scenes]
    model = build_model(ModelConfig(num_classes=4, width=4, depth=2))
    config = TrainConfig(
        iterations=20, batch_size=2, validate_every=5, patience=10, stop_on="miou",
        learning_rate=1e-2,
    )  # fmt: skip
    result = train_on_partial_masks(
        model, images[:2], truths[:2], config, rng, validation=(images[2:], truths[2:])
    )
    assert result.best_validation_loss is None and result.best_validation_miou is not None
    kept = mean_iou(evaluate_confusion(model, images[2:], truths[2:], 4, torch.device("cpu")))
    assert kept == pytest.approx(result.best_validation_miou)


def _largest_first_step(warmup: int) -> float:
    rng = np.random.default_rng(2)
    image, truth = generate_scene(32, 32, rng)
    torch.manual_seed(0)
    model = build_model(ModelConfig(num_classes=4, width=4, depth=2))
    before = [p.detach().clone() for p in model.parameters()]
    config = TrainConfig(iterations=1, batch_size=1, learning_rate=1e-2, warmup_iterations=warmup)
    train_on_partial_masks(model, [image], [truth], config, rng)
    after = [p.detach() for p in model.parameters()]
    return max(float((a - b).abs().max()) for a, b in zip(after, before, strict=True))


def test_warmup_scales_the_first_steps() -> None:
    # Adam's first step moves a weight by about the learning rate whatever its gradient.
    assert _largest_first_step(warmup=0) > 0.9e-2
    assert _largest_first_step(warmup=10) < 1.1e-3


def test_patience_counts_only_evaluations_after_the_warmup() -> None:
    rng = np.random.default_rng(1)
    image, truth = generate_scene(32, 32, rng)
    model = build_model(ModelConfig(num_classes=4, width=4, depth=2))
    config = TrainConfig(
        iterations=200,
        batch_size=2,
        validate_every=2,
        patience=2,
        learning_rate=1.0,
        warmup_iterations=20,
    )
    # As in test_early_stop_keeps_best_weights: the huge learning rate spoils validation,
    # but no evaluation inside the warm-up counts against the patience.
    result = train_on_partial_masks(
        model, [image], [truth], config, rng, validation=([image], [truth])
    )
    assert result.stopped_early
    assert 20 + 2 * 2 <= result.iterations_run < 200
    with pytest.raises(ValueError, match="warmup_iterations"):
        TrainConfig(warmup_iterations=-1)


def test_without_the_start_as_candidate_a_training_keeps_its_own_best() -> None:
    rng = np.random.default_rng(1)
    image, truth = generate_scene(32, 32, rng)
    torch.manual_seed(0)
    model = build_model(ModelConfig(num_classes=4, width=4, depth=2))
    start = [p.detach().clone() for p in model.parameters()]
    config = TrainConfig(
        iterations=40,
        batch_size=2,
        validate_every=2,
        patience=2,
        learning_rate=1.0,
        start_is_candidate=False,
    )
    # The huge learning rate spoils validation at once; the start would win if it could.
    result = train_on_partial_masks(
        model, [image], [truth], config, rng, validation=([image], [truth])
    )
    assert result.best_iteration is not None and result.best_iteration >= 2
    moved = [not torch.equal(p, s) for p, s in zip(model.parameters(), start, strict=True)]
    assert any(moved)
