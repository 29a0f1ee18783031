"""MC-dropout scores of a list of images: pixel, superpixel and image scores in one pass.

Shared by the service's scoring jobs and the simulator.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from numpy.typing import NDArray

from worker.engine.features import EncodedImage, frozen_encoder_model, stack_encoded
from worker.engine.model import SegmentationModel, host_to_device, images_to_tensor
from worker.engine.reductions import (
    IMAGE_SCORES,
    foreground_mask,
    image_score,
    superpixel_scores,
)
from worker.engine.uncertainty import METHODS, pixel_uncertainty, pixel_uncertainty_from_trunk


@dataclass(frozen=True)
class ImageUncertainty:
    """pixel_scores: (H, W) float32; superpixel_scores: (n,) float64, NaN = all labeled;
    image_score: NaN when every pixel is labeled; predicted: (H, W) int64 class of the
    mean softmax."""

    pixel_scores: NDArray[np.float32]
    superpixel_scores: NDArray[np.float64]
    image_score: float
    predicted: NDArray[np.int64]


def image_uncertainty(
    pixel_scores: NDArray[np.floating],
    predicted: NDArray[np.integer],
    superpixels: NDArray[np.integer],
    labeled: NDArray[np.bool_],
    *,
    image_score_mode: str = "mean",
    background_classes: Sequence[int] = (),
    class_weights: NDArray[np.floating] | None = None,
) -> ImageUncertainty:
    """Superpixel and image scores of one image from its pixel scores and prediction.

    pixel_scores: (H, W); predicted, superpixels: (H, W) ints; labeled: (H, W) bool.
    ``image_score_mode`` "mean" is the mean over unlabeled pixels; "foreground" is the
    paper's agricultural variant (mean over unlabeled pixels predicted as a class outside
    ``background_classes``, times their share). ``class_weights`` (C,) multiplies each
    pixel's score by the weight of its predicted class before both reductions
    (class-balance-aware selection); the returned pixel_scores stay unweighted.
    """
    if image_score_mode not in IMAGE_SCORES:
        raise ValueError(f"unknown image score {image_score_mode!r}; known: {IMAGE_SCORES}")
    if not pixel_scores.shape == predicted.shape == superpixels.shape == labeled.shape:
        raise ValueError(
            f"pixel scores {pixel_scores.shape}, predicted {predicted.shape}, superpixels "
            f"{superpixels.shape} and labeled {labeled.shape} differ"
        )
    weighted = pixel_scores.astype(np.float64)
    if class_weights is not None:
        if class_weights.ndim != 1 or int(predicted.max()) >= class_weights.size:
            raise ValueError(
                f"class_weights {class_weights.shape} do not cover predicted classes "
                f"0..{int(predicted.max())}"
            )
        weighted = weighted * class_weights[predicted]
    foreground = (
        foreground_mask(predicted, background_classes) if image_score_mode == "foreground" else None
    )
    return ImageUncertainty(
        pixel_scores=pixel_scores.astype(np.float32),
        superpixel_scores=superpixel_scores(
            weighted, superpixels, labeled, int(superpixels.max()) + 1
        ),
        image_score=image_score(weighted, labeled, foreground),
        predicted=predicted.astype(np.int64),
    )


def equal_shape_batches(shapes: Sequence[tuple[int, ...]], size: int) -> list[list[int]]:
    """Indices in order, grouped into consecutive runs of equal shape at most ``size`` long."""
    if size < 1:
        raise ValueError(f"batch size must be >= 1, got {size}")
    batches: list[list[int]] = []
    for index, shape in enumerate(shapes):
        if batches and len(batches[-1]) < size and shapes[batches[-1][0]] == shape:
            batches[-1].append(index)
        else:
            batches.append([index])
    return batches


def _check_inputs(
    sizes: Sequence[tuple[int, ...]],
    superpixels: Sequence[NDArray[np.integer]],
    labeled: Sequence[NDArray[np.bool_]],
    image_score_mode: str,
    background_classes: Sequence[int],
) -> None:
    if image_score_mode not in IMAGE_SCORES:
        raise ValueError(f"unknown image score {image_score_mode!r}; known: {IMAGE_SCORES}")
    if image_score_mode == "foreground":
        foreground_mask(np.zeros(1, np.int64), background_classes)  # validates the classes
    if not len(sizes) == len(superpixels) == len(labeled):
        raise ValueError(
            f"{len(sizes)} images, {len(superpixels)} superpixel maps, {len(labeled)} masks"
        )
    for size, ids, known in zip(sizes, superpixels, labeled, strict=True):
        if not tuple(size) == ids.shape == known.shape:
            raise ValueError(
                f"image {tuple(size)}, superpixels {ids.shape} and labeled {known.shape} differ"
            )


def score_images(
    model: SegmentationModel,
    images: Sequence[NDArray[np.uint8]],
    superpixels: Sequence[NDArray[np.integer]],
    labeled: Sequence[NDArray[np.bool_]],
    *,
    method: str,
    samples: int,
    device: torch.device,
    batch_size: int = 8,
    bf16: bool = False,
    cheap: bool = True,
    image_score_mode: str = "mean",
    background_classes: Sequence[int] = (),
    class_weights: NDArray[np.floating] | None = None,
) -> Iterator[ImageUncertainty]:
    """Yields one ImageUncertainty per image, in order.

    images: (H, W, 3) uint8 each; superpixels: (H, W) ids 0..n-1; labeled: (H, W) bool
    (pixels already labeled do not count towards superpixel or image scores).
    ``image_score_mode``, ``background_classes`` and ``class_weights``: see
    ``image_uncertainty``.
    """
    _check_inputs(
        [image.shape[:2] for image in images],
        superpixels,
        labeled,
        image_score_mode,
        background_classes,
    )
    for batch in equal_shape_batches([image.shape for image in images], batch_size):
        stacked = host_to_device(torch.from_numpy(np.stack([images[i] for i in batch])), device)
        scores, predictions = pixel_uncertainty(
            model, images_to_tensor(stacked), method, samples, cheap=cheap, bf16=bf16
        )
        yield from _batch_uncertainties(
            batch,
            scores,
            predictions,
            superpixels,
            labeled,
            image_score_mode,
            background_classes,
            class_weights,
        )


@torch.no_grad()
def score_encoded(
    model: SegmentationModel,
    encoded: Sequence[EncodedImage],
    superpixels: Sequence[NDArray[np.integer]],
    labeled: Sequence[NDArray[np.bool_]],
    *,
    method: str,
    samples: int,
    device: torch.device,
    batch_size: int = 8,
    bf16: bool = False,
    image_score_mode: str = "mean",
    background_classes: Sequence[int] = (),
    class_weights: NDArray[np.floating] | None = None,
) -> Iterator[ImageUncertainty]:
    """``score_images`` from cached encoder features (``features.encode_images``) of a
    frozen pretrained model: the decoder runs once per image, dropout + classifier
    ``samples`` times. Same results as ``score_images(cheap=True)`` on the images."""
    frozen = frozen_encoder_model(model)
    _check_inputs(
        [e.image_size for e in encoded], superpixels, labeled, image_score_mode, background_classes
    )
    was_training = frozen.training
    frozen.eval()
    for batch in equal_shape_batches([e.image_size for e in encoded], batch_size):
        trunk = frozen.decode(stack_encoded([encoded[i] for i in batch], device))
        scores, predictions = pixel_uncertainty_from_trunk(
            frozen, trunk, encoded[batch[0]].image_size, method, samples, bf16=bf16
        )
        yield from _batch_uncertainties(
            batch,
            scores,
            predictions,
            superpixels,
            labeled,
            image_score_mode,
            background_classes,
            class_weights,
        )
    frozen.train(was_training)


def _batch_uncertainties(
    batch: Sequence[int],
    scores: torch.Tensor,
    predictions: torch.Tensor,
    superpixels: Sequence[NDArray[np.integer]],
    labeled: Sequence[NDArray[np.bool_]],
    image_score_mode: str,
    background_classes: Sequence[int],
    class_weights: NDArray[np.floating] | None,
) -> Iterator[ImageUncertainty]:
    """One ``ImageUncertainty`` per image of a scored batch (shared by both scoring paths)."""
    for index, pixel_scores, predicted in zip(
        batch, scores.cpu().numpy(), predictions.cpu().numpy(), strict=True
    ):
        yield image_uncertainty(
            pixel_scores,
            predicted,
            superpixels[index],
            labeled[index],
            image_score_mode=image_score_mode,
            background_classes=background_classes,
            class_weights=class_weights,
        )


def max_pixel_score(method: str, num_classes: int) -> float:
    """The largest value ``method`` can give a pixel, to scale scores to 0..1 comparably
    across images (DESIGN.md §1.3)."""
    if method not in METHODS:
        raise ValueError(f"unknown uncertainty method {method!r}; known: {METHODS}")
    if method in ("entropy", "bald"):
        return math.log(num_classes)
    if method == "margin":
        return 1.0
    return 2.0 * math.log2(num_classes)  # paper: entropy of the mean + mean entropy, base 2


def quantize_scores(pixel_scores: NDArray[np.floating], maximum: float) -> NDArray[np.uint8]:
    """(H, W) scores -> (H, W) uint8, 0..maximum mapped to 0..255 (clipped)."""
    if maximum <= 0:
        raise ValueError(f"maximum must be positive, got {maximum}")
    scaled = np.clip(np.nan_to_num(pixel_scores) / maximum, 0.0, 1.0) * 255.0
    quantized: NDArray[np.uint8] = np.rint(scaled).astype(np.uint8)
    return quantized
