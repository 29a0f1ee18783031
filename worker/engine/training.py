"""Training on partial masks: cross-entropy that ignores unlabeled pixels (255).

Two inputs: images (the whole model trains, or all but a frozen encoder) and cached encoder
features of a frozen pretrained model (only decoder and head run). Both share one loop with
early stopping on a held-out labeled split.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from numpy.typing import NDArray
from torch import nn

from worker.engine.evaluation import evaluate_confusion, evaluate_confusion_encoded
from worker.engine.features import EncodedImage, frozen_encoder_model, stack_encoded
from worker.engine.metrics import mean_iou
from worker.engine.model import SegmentationModel, images_to_tensor

UNLABELED = 255
# What early stopping watches on the held-out split: its loss, or its mIoU (the loss can
# stop rising-mIoU trainings: it also pays for confident mistakes on rare classes).
STOP_CRITERIA = ("loss", "miou")


@dataclass(frozen=True)
class TrainConfig:
    iterations: int = 500
    batch_size: int = 8
    learning_rate: float = 1e-4
    weight_decay: float = 0.0
    flips: bool = True
    # Random square crops make CPU training affordable; None trains on whole images.
    crop_size: int | None = None
    class_weights: bool = False
    # Early stop on a held-out labeled split's loss or mIoU (`stop_on`): evaluated every
    # `validate_every` iterations, stop after `patience` evaluations without improvement,
    # keep the best weights; `iterations` is then the maximum.
    validate_every: int = 0
    patience: int = 5
    stop_on: str = "loss"
    bf16: bool = False
    # The learning rate rises linearly over the first `warmup_iterations` and patience counts
    # only evaluations after them: a fresh Adam's first steps move every weight by about the
    # learning rate whatever its gradient, which knocks a trained decoder off its optimum, and
    # a fine-tune stopped before it recovers keeps the previous round's weights unchanged.
    warmup_iterations: int = 0
    # With early stopping, the starting weights are a candidate too, so a round whose new
    # labels do not beat them keeps the previous model. False takes the best of this
    # training alone: the start was itself chosen as the maximum of many noisy held-out
    # scores, and a fine-tune that must beat that maximum can stall for rounds.
    start_is_candidate: bool = True

    def __post_init__(self) -> None:
        if self.iterations < 0 or self.batch_size < 1:
            raise ValueError(
                f"iterations must be >= 0 and batch_size >= 1, got {self.iterations}, "
                f"{self.batch_size}"
            )
        if self.learning_rate <= 0:
            raise ValueError(f"learning_rate must be positive, got {self.learning_rate}")
        if self.crop_size is not None and self.crop_size < 8:
            raise ValueError(f"crop_size must be at least 8, got {self.crop_size}")
        if self.validate_every < 0 or self.patience < 1:
            raise ValueError(
                f"validate_every must be >= 0 and patience >= 1, got {self.validate_every}, "
                f"{self.patience}"
            )
        if self.stop_on not in STOP_CRITERIA:
            raise ValueError(f"stop_on must be one of {STOP_CRITERIA}, got {self.stop_on!r}")
        if self.warmup_iterations < 0:
            raise ValueError(f"warmup_iterations must be >= 0, got {self.warmup_iterations}")


@dataclass
class TrainResult:
    losses: list[float] = field(default_factory=list)
    iterations_run: int = 0  # the iterations actually trained (early stopping ends sooner)
    best_validation_loss: float | None = None  # with stop_on="loss"
    best_validation_miou: float | None = None  # with stop_on="miou"
    best_iteration: int | None = None  # whose weights were kept (0: the starting ones)
    stopped_early: bool = False


def partial_mask_loss(
    logits: torch.Tensor, target: torch.Tensor, class_weights: torch.Tensor | None = None
) -> torch.Tensor:
    """Cross-entropy over labeled pixels only.

    logits: (B, C, H, W); target: (B, H, W) int64 with 255 = unlabeled.
    A batch without any labeled pixel gives a zero loss (and zero gradient), not NaN.
    """
    per_pixel = F.cross_entropy(
        logits, target, weight=class_weights, ignore_index=UNLABELED, reduction="none"
    )
    labeled = target != UNLABELED
    if class_weights is None:
        denominator = labeled.sum()
    else:
        denominator = class_weights[target.clamp(max=logits.shape[1] - 1)][labeled].sum()
    return per_pixel.sum() / denominator.clamp(min=1e-12)


def median_frequency_weights(
    masks: Sequence[NDArray[np.uint8]], num_classes: int
) -> NDArray[np.float32]:
    """Median-frequency class weights over labeled pixels; absent classes get weight 0."""
    counts = np.zeros(num_classes, dtype=np.float64)
    for mask in masks:
        labeled = mask[mask != UNLABELED]
        counts += np.bincount(labeled.ravel(), minlength=num_classes)[:num_classes]
    present = counts > 0
    weights = np.zeros(num_classes, dtype=np.float32)
    if present.any():
        frequency = counts[present] / counts[present].sum()
        weights[present] = np.median(frequency) / frequency
    return weights


def sqrt_median_frequency_weights(
    masks: Sequence[NDArray[np.uint8]], num_classes: int
) -> NDArray[np.float32]:
    """The square root of ``median_frequency_weights``: rare classes still weigh more, with
    a far smaller spread (CamVid: 10x between bicyclist and road instead of 110x)."""
    return np.sqrt(median_frequency_weights(masks, num_classes)).astype(np.float32)


# Loss weightings by name, for command lines: none, median frequency, its square root.
CLASS_WEIGHTINGS = ("none", "median", "sqrt-median")


def class_weights_named(
    name: str, masks: Sequence[NDArray[np.uint8]], num_classes: int
) -> NDArray[np.float32] | None:
    """The ``CLASS_WEIGHTINGS`` entry ``name`` over ``masks``; None for "none"."""
    if name not in CLASS_WEIGHTINGS:
        raise ValueError(f"class weighting must be one of {CLASS_WEIGHTINGS}, got {name!r}")
    if name == "none":
        return None
    if name == "median":
        return median_frequency_weights(masks, num_classes)
    return sqrt_median_frequency_weights(masks, num_classes)


def _random_window(
    height: int, width: int, crop_h: int, crop_w: int, rng: np.random.Generator
) -> tuple[slice, slice]:
    top = int(rng.integers(0, max(height - crop_h, 0) + 1))
    left = int(rng.integers(0, max(width - crop_w, 0) + 1))
    return slice(top, top + crop_h), slice(left, left + crop_w)


def sample_batch(
    images: Sequence[NDArray[np.uint8]],
    masks: Sequence[NDArray[np.uint8]],
    candidates: NDArray[np.int64],
    config: TrainConfig,
    rng: np.random.Generator,
) -> tuple[NDArray[np.uint8], NDArray[np.uint8]]:
    """A batch of (B, h, w, 3) images and (B, h, w) masks, cropped and flipped.

    Without a crop size, images of different sizes are cut to the batch's smallest size.
    """
    chosen = rng.choice(candidates, size=config.batch_size, replace=True)
    if config.crop_size is None:
        crop_h = min(images[i].shape[0] for i in chosen)
        crop_w = min(images[i].shape[1] for i in chosen)
    else:
        crop_h = crop_w = config.crop_size
    batch_images, batch_masks = [], []
    for index in chosen:
        image, mask = images[index], masks[index]
        height, width = mask.shape
        rows, cols = _random_window(height, width, crop_h, crop_w, rng)
        image_crop, mask_crop = image[rows, cols], mask[rows, cols]
        if mask_crop.shape != (crop_h, crop_w):  # a crop larger than the image: pad, unlabeled
            pad = ((0, crop_h - mask_crop.shape[0]), (0, crop_w - mask_crop.shape[1]))
            image_crop = np.pad(image_crop, (*pad, (0, 0)))
            mask_crop = np.pad(mask_crop, pad, constant_values=UNLABELED)
        if config.flips and rng.random() < 0.5:
            image_crop, mask_crop = image_crop[:, ::-1], mask_crop[:, ::-1]
        batch_images.append(image_crop)
        batch_masks.append(mask_crop)
    return np.stack(batch_images), np.stack(batch_masks)


def _to_device(
    images: NDArray[np.uint8], masks: NDArray[np.uint8], device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    image_tensor = images_to_tensor(torch.from_numpy(np.ascontiguousarray(images)).to(device))
    mask_tensor = torch.from_numpy(np.ascontiguousarray(masks)).to(device).long()
    return image_tensor, mask_tensor


@torch.no_grad()
def validation_loss(
    model: nn.Module,
    images: Sequence[NDArray[np.uint8]],
    masks: Sequence[NDArray[np.uint8]],
    device: torch.device,
    class_weights: torch.Tensor | None = None,
) -> float:
    """Mean partial-mask loss over whole validation images, one at a time, in eval mode."""
    was_training = model.training
    model.eval()
    total = 0.0
    for image, mask in zip(images, masks, strict=True):
        x, y = _to_device(image[None], mask[None], device)
        total += float(partial_mask_loss(model(x), y, class_weights))
    model.train(was_training)
    return total / max(len(images), 1)


def _fit(
    model: nn.Module,
    batch_loss: Callable[[torch.Tensor | None], torch.Tensor],
    held_out_loss: Callable[[torch.Tensor | None], float] | None,
    config: TrainConfig,
    weights: torch.Tensor | None,
    on_iteration: Callable[[int, float], None] | None,
) -> TrainResult:
    """The training loop: a fresh Adam on the trainable parameters, early stopping on
    ``held_out_loss`` (lower is better: a loss, or minus an mIoU) when given and
    ``config.validate_every`` is set."""
    result = TrainResult()
    optimizer = torch.optim.Adam(
        [p for p in model.parameters() if p.requires_grad],
        lr=config.learning_rate,
        weight_decay=config.weight_decay,
    )
    best_loss, best_state, evaluations_without_gain = math.inf, None, 0
    if held_out_loss is not None and config.start_is_candidate:
        # A round whose new labels do not lower the held-out loss keeps the previous model.
        best_loss, best_state = held_out_loss(weights), copy.deepcopy(model.state_dict())
        result.best_iteration = 0
    model.train()
    for iteration in range(config.iterations):
        warming_up = iteration < config.warmup_iterations
        if iteration <= config.warmup_iterations:
            for group in optimizer.param_groups:
                share = (iteration + 1) / config.warmup_iterations if warming_up else 1.0
                group["lr"] = config.learning_rate * share
        loss = batch_loss(weights)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]
        optimizer.step()
        result.losses.append(float(loss.detach()))
        result.iterations_run = iteration + 1
        if on_iteration is not None:
            on_iteration(iteration + 1, result.losses[-1])
        if held_out_loss is not None and (iteration + 1) % config.validate_every == 0:
            current = held_out_loss(weights)
            model.train()
            if current < best_loss:
                best_loss, evaluations_without_gain = current, 0
                best_state = copy.deepcopy(model.state_dict())
                result.best_iteration = iteration + 1
            elif not warming_up:
                evaluations_without_gain += 1
                if evaluations_without_gain >= config.patience:
                    result.stopped_early = True
                    break
    if best_state is not None:
        model.load_state_dict(best_state)
        if config.stop_on == "miou":
            result.best_validation_miou = -best_loss
        else:
            result.best_validation_loss = best_loss
    return result


def _num_classes(model: nn.Module) -> int:
    classes = int(getattr(getattr(model, "config", None), "num_classes", 0))
    if classes < 2:
        raise ValueError("early stopping on mIoU needs a model with config.num_classes")
    return classes


def _class_weights(
    model: nn.Module,
    masks: Sequence[NDArray[np.uint8]],
    config: TrainConfig,
    device: torch.device,
) -> torch.Tensor | None:
    num_classes = int(getattr(getattr(model, "config", None), "num_classes", 0)) or None
    if not config.class_weights or not num_classes:
        return None
    return torch.from_numpy(median_frequency_weights(masks, num_classes)).to(device)


def _labeled_indices(masks: Sequence[NDArray[np.uint8]]) -> NDArray[np.int64]:
    return np.array([i for i, mask in enumerate(masks) if (mask != UNLABELED).any()], np.int64)


def train_on_partial_masks(
    model: nn.Module,
    images: Sequence[NDArray[np.uint8]],
    masks: Sequence[NDArray[np.uint8]],
    config: TrainConfig,
    rng: np.random.Generator,
    device: torch.device | None = None,
    validation: tuple[Sequence[NDArray[np.uint8]], Sequence[NDArray[np.uint8]]] | None = None,
    on_iteration: Callable[[int, float], None] | None = None,
) -> TrainResult:
    """Fine-tune ``model`` in place on (H, W, 3) uint8 images and (H, W) uint8 partial masks.

    A fresh Adam optimizer every call (DESIGN.md §1.4: each round restarts the optimizer
    from the previous round's weights). Images without a labeled pixel are skipped.
    ``validation``: held-out (images, masks) for early stopping (``config.validate_every``).
    """
    if len(images) != len(masks):
        raise ValueError(f"{len(images)} images but {len(masks)} masks")
    for image, mask in zip(images, masks, strict=True):
        if image.shape[:2] != mask.shape:
            raise ValueError(f"image shape {image.shape} does not match mask shape {mask.shape}")
    device = device or next(model.parameters()).device
    candidates = _labeled_indices(masks)
    if len(candidates) == 0 or config.iterations == 0:
        return TrainResult()

    def batch_loss(weights: torch.Tensor | None) -> torch.Tensor:
        batch_images, batch_masks = sample_batch(images, masks, candidates, config, rng)
        x, y = _to_device(batch_images, batch_masks, device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=config.bf16):
            logits = model(x)
        return partial_mask_loss(logits.float(), y, weights)

    held_out = None
    if validation is not None and config.validate_every:
        val_images, val_masks = validation

        def held_out(weights: torch.Tensor | None) -> float:
            if config.stop_on == "miou":
                classes = _num_classes(model)
                return -mean_iou(evaluate_confusion(model, val_images, val_masks, classes, device))  # type: ignore[arg-type]
            return validation_loss(model, val_images, val_masks, device, weights)

    weights = _class_weights(model, masks, config, device)
    return _fit(model, batch_loss, held_out, config, weights, on_iteration)


def sample_encoded_batch(
    encoded: Sequence[EncodedImage],
    masks: Sequence[NDArray[np.uint8]],
    candidates: NDArray[np.int64],
    config: TrainConfig,
    rng: np.random.Generator,
) -> tuple[list[EncodedImage], NDArray[np.uint8], list[bool]]:
    """A batch of whole encoded images, their (B, H, W) masks and which to mirror.

    Draws from ``rng`` what ``sample_batch`` draws for whole equal-size images, so both paths
    see the same batches. No crops: a flip of features and mask is the cheap exact
    augmentation here; a crop would need the encoder again.
    """
    chosen = rng.choice(candidates, size=config.batch_size, replace=True)
    flips = [bool(config.flips and rng.random() < 0.5) for _ in chosen]
    batch_masks = np.stack(
        [masks[i][:, ::-1] if flip else masks[i] for i, flip in zip(chosen, flips, strict=True)]
    )
    return [encoded[i] for i in chosen], batch_masks, flips


def encoded_validation_loss(
    model: SegmentationModel,
    encoded: Sequence[EncodedImage],
    masks: Sequence[NDArray[np.uint8]],
    device: torch.device,
    class_weights: torch.Tensor | None = None,
) -> float:
    """``validation_loss`` from cached features: the same per-image mean, in eval mode."""
    frozen = frozen_encoder_model(model)
    was_training = frozen.training
    frozen.eval()
    total = 0.0
    with torch.no_grad():
        for item, mask in zip(encoded, masks, strict=True):
            logits = frozen.head(frozen.decode(stack_encoded([item], device)), item.image_size)
            target = torch.from_numpy(np.ascontiguousarray(mask[None])).to(device).long()
            total += float(partial_mask_loss(logits, target, class_weights))
    frozen.train(was_training)
    return total / max(len(encoded), 1)


def train_on_features(
    model: SegmentationModel,
    encoded: Sequence[EncodedImage],
    masks: Sequence[NDArray[np.uint8]],
    config: TrainConfig,
    rng: np.random.Generator,
    device: torch.device | None = None,
    validation: tuple[Sequence[EncodedImage], Sequence[NDArray[np.uint8]]] | None = None,
    on_iteration: Callable[[int, float], None] | None = None,
) -> TrainResult:
    """``train_on_partial_masks`` for a frozen pretrained model from cached encoder features
    (``features.encode_images``): only decoder and classifier train. (H, W) masks match each
    feature set's image_size; augmentation is horizontal flips (``config.crop_size`` must be
    None). Same result as training the whole model on the images without flips.
    """
    frozen = frozen_encoder_model(model)
    if config.crop_size is not None:
        raise ValueError("training from cached features takes whole images: crop_size must be None")
    if len(encoded) != len(masks):
        raise ValueError(f"{len(encoded)} encoded images but {len(masks)} masks")
    for item, mask in zip(encoded, masks, strict=True):
        if item.image_size != mask.shape:
            raise ValueError(
                f"features of a {item.image_size} image do not match mask {mask.shape}"
            )
    device = device or next(frozen.parameters()).device
    candidates = _labeled_indices(masks)
    if len(candidates) == 0 or config.iterations == 0:
        return TrainResult()
    sizes = sorted({encoded[i].image_size for i in candidates})
    by_size = {
        size: np.array([i for i in candidates if encoded[i].image_size == size], np.int64)
        for size in sizes
    }

    def batch_loss(weights: torch.Tensor | None) -> torch.Tensor:
        # Images of different sizes cannot share a batch: pick a size, then a batch of it.
        group = by_size[sizes[int(rng.integers(len(sizes)))]] if len(sizes) > 1 else candidates
        items, batch_masks, flips = sample_encoded_batch(encoded, masks, group, config, rng)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=config.bf16):
            logits = frozen.head(
                frozen.decode(stack_encoded(items, device, flips)), items[0].image_size
            )
        target = torch.from_numpy(np.ascontiguousarray(batch_masks)).to(device).long()
        return partial_mask_loss(logits.float(), target, weights)

    held_out = None
    if validation is not None and config.validate_every:
        val_encoded, val_masks = validation

        def held_out(weights: torch.Tensor | None) -> float:
            if config.stop_on == "miou":
                matrix = evaluate_confusion_encoded(
                    frozen, val_encoded, val_masks, frozen.config.num_classes, device
                )
                return -mean_iou(matrix)
            return encoded_validation_loss(frozen, val_encoded, val_masks, device, weights)

    weights = _class_weights(frozen, masks, config, device)
    return _fit(frozen, batch_loss, held_out, config, weights, on_iteration)
