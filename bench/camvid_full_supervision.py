"""Full supervision of the pretrained model on CamVid (240x180) from cached features: the
recipe's levers one at a time, test and val mIoU every --every iterations.

mIoU: 11 classes, void ignored, one confusion matrix over the split. Encoder features are
computed once per run (or read from --cache); --normalisation imagenet feeds the encoder
ImageNet's mean/std (the engine's input before it used (x - 127) / 128) to measure that
difference. --input-scale 2 feeds the encoder the image upsampled 2x (bilinear) and takes its
taps one stride deeper (strides 4, 8, 16, 32 of the 2x image, the stride-4 map average-pooled
onto the stride-8 grid), so the engine's FPN decoder still works at stride 4 of the 240x180
image: about today's decoder cost, finer encoder features.
Usage: .venv/bin/python bench/camvid_full_supervision.py [DATASET_DIR] [--iterations 1000]
    [--input-scale 1|2] [--encoder efficientnet_lite0] [--decoder-channels 64]
    [--class-weights none|median|sqrt-median] [--schedule constant|poly]
    [--normalisation lite|imagenet] [--cache runs/camvid_features] [--threads 1] [--seed 0]
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from numpy.typing import NDArray
from torch import nn

from worker.engine.encoders import IMAGENET_MEAN, IMAGENET_STD, encoder_names
from worker.engine.evaluation import evaluate_confusion_encoded
from worker.engine.features import (
    EncodedImage,
    encode_images,
    encoder_fingerprint,
    stack_encoded,
)
from worker.engine.metrics import iou_per_class, mean_iou
from worker.engine.model import IMAGE_MEAN, IMAGE_STD, ModelConfig, PretrainedSegmenter, build_model
from worker.engine.training import CLASS_WEIGHTINGS, class_weights_named, partial_mask_loss
from worker.simulation.dataset import read_classes, read_split

SPLITS = ("train", "val", "test")


def load_avg() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


class UpsampledEncoder(nn.Module):
    """A registered encoder fed the image upsampled 2x, its taps one stride deeper: maps at
    strides 4, 8, 16, 32 of the 2x image (2, 4, 8, 16 of the original), the first
    average-pooled onto the second's grid, so the FPN decoder runs on the same stride-4
    grid as at 1x. Keeps the encoder contract (normalised images in, maps finest first)."""

    def __init__(self, encoder: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder
        self.channels: tuple[int, ...] = tuple(encoder.channels)[1:]  # type: ignore[arg-type]

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        """images: (B, 3, H, W) normalised. Returns 4 maps, the first two on (~H/4, ~W/4)."""
        upsampled = F.interpolate(images, scale_factor=2, mode="bilinear", align_corners=False)
        maps = list(self.encoder(upsampled))[1:]
        maps[0] = F.adaptive_avg_pool2d(maps[0], maps[1].shape[-2:])
        return maps


def build_segmenter(config: ModelConfig, input_scale: int) -> PretrainedSegmenter:
    """The engine's pretrained model; at input scale 2 its encoder wrapped in UpsampledEncoder
    (the engine's PretrainedSegmenter then builds its FPN decoder for the deeper taps)."""
    model = build_model(config)
    assert isinstance(model, PretrainedSegmenter)
    if input_scale == 1:
        return model
    return PretrainedSegmenter(config, UpsampledEncoder(model.encoder))


def features_of_split(
    model: PretrainedSegmenter,
    images: Sequence[NDArray[np.uint8]],
    cache: Path | None,
    key: str,
) -> list[EncodedImage]:
    """The encoder's features of ``images``, read from (or written to) ``cache``/``key``.pt."""
    path = None if cache is None else cache / f"{key}.pt"
    size = (int(images[0].shape[0]), int(images[0].shape[1]))
    if path is not None and path.is_file():
        maps: list[torch.Tensor] = torch.load(path, weights_only=True)
        return [EncodedImage(tuple(m[i] for m in maps), size) for i in range(len(images))]
    encoded = encode_images(model, images, torch.device("cpu"))
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        scales = range(len(encoded[0].features))
        torch.save([torch.stack([e.features[s] for e in encoded]) for s in scales], path)
    return encoded


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("data", nargs="?", default="../shared/datasets/camvid", type=Path)
    parser.add_argument("--iterations", type=int, default=1000)
    parser.add_argument("--every", type=int, default=250)
    parser.add_argument("--learning-rate", type=float, default=5e-3)
    parser.add_argument("--schedule", choices=["constant", "poly"], default="constant")
    parser.add_argument("--class-weights", choices=CLASS_WEIGHTINGS, default="none")
    parser.add_argument("--normalisation", choices=["lite", "imagenet"], default="lite")
    parser.add_argument("--input-scale", type=int, choices=[1, 2], default=1)
    parser.add_argument("--encoder", choices=encoder_names(), default="efficientnet_lite0")
    parser.add_argument("--decoder-channels", type=int, default=64)
    parser.add_argument("--cache", type=Path, default=None, help="folder for encoder features")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cpu = torch.device("cpu")
    classes = read_classes(args.data)
    num_classes = len(classes.classes)
    torch.manual_seed(args.seed)
    config = ModelConfig(
        num_classes=num_classes, kind=args.encoder, decoder_channels=args.decoder_channels
    )
    model = build_segmenter(config, args.input_scale)
    if args.normalisation == "imagenet":  # what the engine did before (x - 127) / 128
        mean, std = torch.tensor(IMAGENET_MEAN), torch.tensor(IMAGENET_STD)
        model.input_scale = (IMAGE_STD / std).view(1, 3, 1, 1)
        model.input_shift = ((IMAGE_MEAN - mean) / std).view(1, 3, 1, 1)
    splits: dict[str, list[NDArray[np.uint8]]] = {}
    encoded: dict[str, list[EncodedImage]] = {}
    started = time.perf_counter()
    for name in SPLITS:
        split = read_split(args.data, name, classes, 0.5)
        ignore = classes.ignore_index
        splits[name] = [np.where(m == ignore, 255, m).astype(np.uint8) for m in split.masks]
        size = (int(split.images[0].shape[0]), int(split.images[0].shape[1]))
        key = (
            f"{encoder_fingerprint(model, size)}_x{args.input_scale}_{args.normalisation}_"
            f"{name}_n{len(split.images)}"
        )
        encoded[name] = features_of_split(model, split.images, args.cache, key)
    count = sum(map(len, splits.values()))
    megabytes = sum(e.nbytes for items in encoded.values() for e in items) / 2**20
    print(
        f"features of {count} images ({args.encoder}, x{args.input_scale}, {megabytes:.0f} MiB): "
        f"{time.perf_counter() - started:.0f} s (load {load_avg()})",
        flush=True,
    )
    masks, features = splits["train"], encoded["train"]
    named = class_weights_named(args.class_weights, masks, num_classes)
    weights = None if named is None else torch.from_numpy(named)
    optimizer = torch.optim.Adam(
        [p for p in model.parameters() if p.requires_grad], lr=args.learning_rate
    )
    rng = np.random.default_rng(args.seed)
    model.train()
    training_seconds = 0.0
    losses: list[float] = []
    scores: dict[str, NDArray[np.int64]] = {}
    for iteration in range(1, args.iterations + 1):
        step_started = time.perf_counter()
        if args.schedule == "poly":
            for group in optimizer.param_groups:
                group["lr"] = args.learning_rate * (1 - (iteration - 1) / args.iterations) ** 0.9
        chosen = rng.choice(len(features), size=8, replace=True)
        flips = [bool(rng.random() < 0.5) for _ in chosen]
        batch = [features[i] for i in chosen]
        target = np.stack(
            [masks[i][:, ::-1] if f else masks[i] for i, f in zip(chosen, flips, strict=True)]
        )
        logits = model.head(model.decode(stack_encoded(batch, cpu, flips)), batch[0].image_size)
        loss = partial_mask_loss(
            logits, torch.from_numpy(np.ascontiguousarray(target)).long(), weights
        )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]
        optimizer.step()
        losses.append(float(loss.detach()))
        training_seconds += time.perf_counter() - step_started
        if iteration % args.every == 0 or iteration == args.iterations:
            for name in ("val", "test"):
                scores[name] = evaluate_confusion_encoded(
                    model, encoded[name], splits[name], num_classes, cpu
                )
            print(
                f"iteration {iteration}: train loss {np.mean(losses[-args.every :]):.3f}, "
                f"val mIoU {100 * mean_iou(scores['val']):.1f}, "
                f"test mIoU {100 * mean_iou(scores['test']):.1f} "
                f"({training_seconds / iteration:.2f} s/iteration, load {load_avg()})",
                flush=True,
            )
    per_class = np.round(100 * iou_per_class(scores["test"]), 1)
    print("test IoU per class:", dict(zip(classes.names, per_class.tolist(), strict=True)))


if __name__ == "__main__":
    main()
