"""Full supervision of the pretrained model on CamVid (240x180) from cached features: the
recipe's levers one at a time, test and val mIoU every --every iterations.

mIoU: 11 classes, void ignored, one confusion matrix over the split. Encoder features are
computed once per run; --normalisation imagenet feeds the encoder ImageNet's mean/std (the
engine's input before it used (x - 127) / 128) to measure that difference.
Usage: .venv/bin/python bench/camvid_full_supervision.py [DATASET_DIR] [--iterations 1000]
    [--schedule constant|poly] [--class-weights] [--normalisation lite|imagenet] [--threads 1]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from worker.engine.encoders import IMAGENET_MEAN, IMAGENET_STD
from worker.engine.evaluation import evaluate_confusion_encoded
from worker.engine.features import encode_images, stack_encoded
from worker.engine.metrics import iou_per_class, mean_iou
from worker.engine.model import IMAGE_MEAN, IMAGE_STD, ModelConfig, PretrainedSegmenter, build_model
from worker.engine.training import median_frequency_weights, partial_mask_loss
from worker.simulation.dataset import read_classes, read_split


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("data", nargs="?", default="../shared/datasets/camvid", type=Path)
    parser.add_argument("--iterations", type=int, default=1000)
    parser.add_argument("--every", type=int, default=250)
    parser.add_argument("--learning-rate", type=float, default=5e-3)
    parser.add_argument("--schedule", choices=["constant", "poly"], default="constant")
    parser.add_argument("--class-weights", action="store_true")
    parser.add_argument("--normalisation", choices=["lite", "imagenet"], default="lite")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cpu = torch.device("cpu")
    classes = read_classes(args.data)
    torch.manual_seed(args.seed)
    model = build_model(ModelConfig(num_classes=len(classes.classes), kind="efficientnet_lite0"))
    assert isinstance(model, PretrainedSegmenter)
    if args.normalisation == "imagenet":  # what the engine did before (x - 127) / 128
        mean, std = torch.tensor(IMAGENET_MEAN), torch.tensor(IMAGENET_STD)
        model.input_scale = (IMAGE_STD / std).view(1, 3, 1, 1)
        model.input_shift = ((IMAGE_MEAN - mean) / std).view(1, 3, 1, 1)
    splits, encoded = {}, {}
    started = time.perf_counter()
    for name in ("train", "val", "test"):
        split = read_split(args.data, name, classes, 0.5)
        ignore = classes.ignore_index
        masks = [np.where(m == ignore, 255, m).astype(np.uint8) for m in split.masks]
        splits[name] = masks
        encoded[name] = encode_images(model, split.images, cpu)
    print(
        f"features of {sum(map(len, splits.values()))} images: "
        f"{time.perf_counter() - started:.0f} s"
    )
    masks, features = splits["train"], encoded["train"]
    weights = (
        torch.from_numpy(median_frequency_weights(masks, len(classes.classes)))
        if args.class_weights
        else None
    )
    optimizer = torch.optim.Adam(
        [p for p in model.parameters() if p.requires_grad], lr=args.learning_rate
    )
    rng = np.random.default_rng(args.seed)
    model.train()
    started = time.perf_counter()
    losses: list[float] = []
    for iteration in range(1, args.iterations + 1):
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
        if iteration % args.every == 0 or iteration == args.iterations:
            scores = {}
            for name in ("val", "test"):
                matrix = evaluate_confusion_encoded(
                    model, encoded[name], splits[name], len(classes.classes), cpu
                )
                scores[name] = matrix
            print(
                f"iteration {iteration}: train loss {np.mean(losses[-args.every :]):.3f}, "
                f"val mIoU {100 * mean_iou(scores['val']):.1f}, "
                f"test mIoU {100 * mean_iou(scores['test']):.1f} "
                f"({time.perf_counter() - started:.0f} s)",
                flush=True,
            )
    per_class = np.round(100 * iou_per_class(scores["test"]), 1)
    print("test IoU per class:", dict(zip(classes.names, per_class.tolist(), strict=True)))


if __name__ == "__main__":
    main()
