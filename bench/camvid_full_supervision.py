"""Full supervision of the pretrained model on CamVid (240x180) from cached features: the
recipe's levers one at a time, test and val mIoU every --every iterations.

mIoU: 11 classes, void ignored, one confusion matrix over the split. Encoder features are
computed once per run (or read from --cache); --normalisation imagenet feeds the encoder
ImageNet's mean/std (the engine's input before it used (x - 127) / 128) to measure that
difference. --input-scale 2 is the engine's encoder zoom 2: the encoder sees the image
upsampled 2x (bilinear), its maps are taken one stride deeper (strides 4-32 of the 2x image,
the stride-4 map average-pooled onto the stride-8 grid by the decoder), so the FPN decoder
still works at stride 4 of the 240x180 image: about today's decoder cost, finer encoder
features. --input-scale 1+2 gives the decoder both: the 2x maps and the 1x strides 4-32, each
1x map summed into the FPN with the 2x map on its grid (one more 1x1 lateral per map, the
encoder run twice when the cache is built).
Usage: .venv/bin/python bench/camvid_full_supervision.py [DATASET_DIR] [--iterations 1000]
    [--input-scale 1|2|1+2] [--encoder efficientnet_lite0] [--decoder-channels 64]
    [--class-weights none|median|sqrt-median] [--schedule constant|poly]
    [--normalisation lite|imagenet] [--cache runs/camvid_features] [--threads 1] [--seed 0]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from numpy.typing import NDArray
from torch import nn

from bench.camvid_finetune import load_avg
from worker.engine.encoders import IMAGENET_MEAN, IMAGENET_STD, encoder_names
from worker.engine.evaluation import evaluate_confusion_encoded
from worker.engine.features import (
    EncodedImage,
    stack_encoded,
)
from worker.engine.metrics import iou_per_class, mean_iou
from worker.engine.model import IMAGE_MEAN, IMAGE_STD, ModelConfig, PretrainedSegmenter, build_model
from worker.engine.training import CLASS_WEIGHTINGS, class_weights_named, partial_mask_loss
from worker.simulation.dataset import read_classes, read_split
from worker.simulation.feature_store import cached_encode

SPLITS = ("train", "val", "test")


class TwoScaleEncoder(nn.Module):
    """An encoder run on the image and on it upsampled 2x, the maps interleaved finest grid
    first: 2x s4, 2x s8, 1x s4 | 2x s16, 1x s8 | 2x s32, 1x s16 | 1x s32 (strides of each
    input). The FPN decoder sums the maps of one grid (its resize is then the identity), so it
    keeps its stride-4 grid. The 2x stride-4 map is average-pooled onto that grid here, as the
    decoder would, to halve what the cache holds."""

    def __init__(self, encoder: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder
        own: tuple[int, ...] = tuple(encoder.channels)  # type: ignore[arg-type]
        self.channels = (own[1], own[2], own[1], own[3], own[2], own[4], own[3], own[4])

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        """images: (B, 3, H, W) normalised. Returns 8 maps, the first three on (~H/4, ~W/4)."""
        upsampled = F.interpolate(images, scale_factor=2, mode="bilinear", align_corners=False)
        fine = list(self.encoder(upsampled))[1:]
        fine[0] = F.adaptive_avg_pool2d(fine[0], fine[1].shape[-2:])
        own = list(self.encoder(images))
        return [fine[0], fine[1], own[1], fine[2], own[2], fine[3], own[3], own[4]]


def build_segmenter(
    num_classes: int, encoder: str, decoder_channels: int, input_scale: str
) -> PretrainedSegmenter:
    """The engine's pretrained model at encoder zoom 1 or 2 (``input_scale`` "1", "2"); for
    "1+2" its encoder wrapped in TwoScaleEncoder (the engine's PretrainedSegmenter then
    builds its FPN decoder for those maps)."""
    zoom = 2 if input_scale == "2" else 1
    config = ModelConfig(
        num_classes=num_classes,
        kind=encoder,
        decoder_channels=decoder_channels,
        encoder_zoom=zoom,
    )
    model = build_model(config)
    assert isinstance(model, PretrainedSegmenter)
    if input_scale != "1+2":
        return model
    return PretrainedSegmenter(config, TwoScaleEncoder(model.encoder))


def training_step(
    model: PretrainedSegmenter,
    optimizer: torch.optim.Optimizer,
    features: Sequence[EncodedImage],
    masks: Sequence[NDArray[np.uint8]],
    weights: torch.Tensor | None,
    rng: np.random.Generator,
) -> float:
    """One Adam step on a batch of 8 random train images, each mirrored with p = 0.5;
    masks (H, W) uint8 with 255 = void. Returns the loss."""
    chosen = rng.choice(len(features), size=8, replace=True)
    flips = [bool(rng.random() < 0.5) for _ in chosen]
    batch = [features[i] for i in chosen]
    target = np.stack(
        [masks[i][:, ::-1] if f else masks[i] for i, f in zip(chosen, flips, strict=True)]
    )
    cpu = torch.device("cpu")
    logits = model.head(model.decode(stack_encoded(batch, cpu, flips)), batch[0].image_size)
    loss = partial_mask_loss(logits, torch.from_numpy(np.ascontiguousarray(target)).long(), weights)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()  # type: ignore[no-untyped-call]
    optimizer.step()
    return float(loss.detach())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("data", nargs="?", default="../shared/datasets/camvid", type=Path)
    parser.add_argument("--iterations", type=int, default=1000)
    parser.add_argument("--every", type=int, default=250)
    parser.add_argument("--learning-rate", type=float, default=5e-3)
    parser.add_argument("--schedule", choices=["constant", "poly"], default="constant")
    parser.add_argument("--class-weights", choices=CLASS_WEIGHTINGS, default="none")
    parser.add_argument("--normalisation", choices=["lite", "imagenet"], default="lite")
    parser.add_argument("--input-scale", choices=["1", "2", "1+2"], default="1")
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
    model = build_segmenter(num_classes, args.encoder, args.decoder_channels, args.input_scale)
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
        # The normalisation override is not in the encoder's key: a folder of its own.
        store = None if args.cache is None else args.cache / args.normalisation
        encoded[name], _ = cached_encode(split.images, model, torch.device("cpu"), store)
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
        losses.append(training_step(model, optimizer, features, masks, weights, rng))
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
