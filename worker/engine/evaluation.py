"""A trained model against ground truth: the confusion matrix over a list of images."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from numpy.typing import NDArray

from worker.engine.features import EncodedImage, frozen_encoder_model, stack_encoded
from worker.engine.metrics import confusion_matrix
from worker.engine.model import SegmentationModel, images_to_tensor
from worker.engine.scoring import equal_shape_batches


@torch.no_grad()
def evaluate_confusion(
    model: SegmentationModel,
    images: Sequence[NDArray[np.uint8]],
    masks: Sequence[NDArray[np.uint8]],
    num_classes: int,
    device: torch.device,
    ignore_index: int | None = 255,
    batch_size: int = 8,
) -> NDArray[np.int64]:
    """(C, C) counts of the deterministic model (dropout off); images (H, W, 3) uint8,
    masks (H, W) uint8 with ``ignore_index`` left out."""
    if len(images) != len(masks):
        raise ValueError(f"{len(images)} images but {len(masks)} masks")
    was_training = model.training
    model.eval()
    matrix = np.zeros((num_classes, num_classes), np.int64)
    for batch in equal_shape_batches([image.shape for image in images], batch_size):
        stacked = torch.from_numpy(np.stack([images[i] for i in batch])).to(device)
        predictions = model(images_to_tensor(stacked)).argmax(dim=1).cpu().numpy()
        for index, prediction in zip(batch, predictions, strict=True):
            matrix += confusion_matrix(prediction, masks[index], num_classes, ignore_index)
    model.train(was_training)
    return matrix


@torch.no_grad()
def evaluate_confusion_encoded(
    model: SegmentationModel,
    encoded: Sequence[EncodedImage],
    masks: Sequence[NDArray[np.uint8]],
    num_classes: int,
    device: torch.device,
    ignore_index: int | None = 255,
    batch_size: int = 8,
) -> NDArray[np.int64]:
    """``evaluate_confusion`` from cached encoder features of a frozen pretrained model."""
    frozen = frozen_encoder_model(model)
    if len(encoded) != len(masks):
        raise ValueError(f"{len(encoded)} encoded images but {len(masks)} masks")
    was_training = frozen.training
    frozen.eval()
    matrix = np.zeros((num_classes, num_classes), np.int64)
    for batch in equal_shape_batches([e.image_size for e in encoded], batch_size):
        trunk = frozen.decode(stack_encoded([encoded[i] for i in batch], device))
        logits = frozen.head(trunk, encoded[batch[0]].image_size)
        for index, prediction in zip(batch, logits.argmax(dim=1).cpu().numpy(), strict=True):
            matrix += confusion_matrix(prediction, masks[index], num_classes, ignore_index)
    frozen.train(was_training)
    return matrix
