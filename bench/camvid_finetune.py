"""Full supervision on CamVid (240x180) with the top of the EfficientNet-Lite0 encoder
fine-tuned: the frozen early blocks run once per image (cached on disk as float16), the later
blocks + FPN decoder + classifier train from that cache.

--train-from 8: blocks 5-15 (strides 16 and 32) train on the cached stride-8 map;
--train-from 16: blocks 11-15 (stride 32) train on the cached stride-16 map; --train-from 0:
nothing of the encoder trains (the engine's recipe, for a baseline in the same run).
--input-scale 2 feeds the encoder the image upsampled 2x (bilinear), the decoder then works
at stride 2 of the 240x180 image. The frozen blocks keep their batch-norm statistics, the
trained ones too (eval mode; their weights and affine terms train). Horizontal flips mirror
the cached maps and the mask (--flip); the best weights are also scored with test-time flip
averaging (the softmax of the map and of its mirror). Early stopping: val mIoU every --every
iterations (--test-curve: test printed alongside), the best weights are kept (saved to
--save) and the test split is scored with them (and with the last iteration's weights).

Usage: .venv/bin/python bench/camvid_finetune.py [DATASET_DIR] --input-scale 2 --train-from 16
    [--iterations 1500] [--encoder-lr 5e-4] [--learning-rate 5e-3] [--schedule poly]
    [--decoder-channels 64] [--class-weights none|median|sqrt-median] [--no-flip] [--seed 0]
    [--cache runs/camvid_cache] [--save PATH]
"""

from __future__ import annotations

import argparse
import copy
import os
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from numpy.typing import NDArray

from worker.engine.encoders import EfficientNetLiteEncoder
from worker.engine.metrics import confusion_matrix, iou_per_class, mean_iou
from worker.engine.model import ModelConfig, PretrainedSegmenter, build_model, images_to_tensor
from worker.engine.training import CLASS_WEIGHTINGS, class_weights_named, partial_mask_loss
from worker.simulation.dataset import read_classes, read_split

# Index of the last frozen block for each --train-from; taps at strides 2, 4, 8, 16, 32.
LAST_FROZEN = {0: 15, 8: 4, 16: 10}
TAPS = (0, 2, 4, 10, 15)
CACHED_TAPS = (0, 2, 4, 10)  # what the cache holds (stride 2 pooled onto the stride-4 grid)


def load_avg() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


@torch.no_grad()
def encode_split(
    encoder: EfficientNetLiteEncoder,
    model: PretrainedSegmenter,
    images: list[NDArray[np.uint8]],
    scale: int,
) -> list[torch.Tensor]:
    """Per cached tap, one (N, C, h, w) float16 tensor: blocks 0..10 on the (upsampled) image."""
    out: list[list[torch.Tensor]] = [[] for _ in CACHED_TAPS]
    for start in range(0, len(images), 8):
        batch = torch.from_numpy(np.stack(images[start : start + 8]))
        x = images_to_tensor(batch) * model.input_scale + model.input_shift  # type: ignore[operator]
        if scale != 1:
            x = F.interpolate(x, scale_factor=scale, mode="bilinear", align_corners=False)
        x = F.relu6(encoder._bn0(encoder._conv_stem(x)))
        maps = []
        for index, block in enumerate(encoder._blocks[: CACHED_TAPS[-1] + 1]):
            x = block(x)
            if index in CACHED_TAPS:
                maps.append(x)
        maps[0] = F.adaptive_avg_pool2d(maps[0], maps[1].shape[-2:])
        for slot, feature in zip(out, maps, strict=True):
            slot.append(feature.to(torch.float16))
    return [torch.cat(slot) for slot in out]


def cached_split(
    cache: Path,
    name: str,
    scale: int,
    encoder: EfficientNetLiteEncoder,
    model: PretrainedSegmenter,
    images: list[NDArray[np.uint8]],
) -> list[torch.Tensor]:
    path = cache / f"{name}_x{scale}_n{len(images)}.pt"
    if path.is_file():
        loaded: list[torch.Tensor] = torch.load(path, weights_only=True)
        return loaded
    started = time.perf_counter()
    maps = encode_split(encoder, model, images, scale)
    cache.mkdir(parents=True, exist_ok=True)
    torch.save(maps, path)
    print(
        f"cached {name} x{scale}: {len(images)} images, "
        f"{sum(m.numel() * 2 for m in maps) / 2**20:.0f} MiB, "
        f"{time.perf_counter() - started:.0f} s (load {load_avg()})",
        flush=True,
    )
    return maps


class Tail(torch.nn.Module):
    """The trainable part: encoder blocks after ``last_frozen``, decoder, classifier."""

    def __init__(self, model: PretrainedSegmenter, last_frozen: int) -> None:
        super().__init__()
        encoder = model.encoder
        assert isinstance(encoder, EfficientNetLiteEncoder)
        self.last_frozen = last_frozen
        self.blocks = torch.nn.ModuleList(encoder._blocks[last_frozen + 1 :])
        self.blocks.requires_grad_(True)
        self.decoder = model.decoder
        self.model = model

    def forward(self, cached: list[torch.Tensor], size: tuple[int, int]) -> torch.Tensor:
        start = CACHED_TAPS.index(self.last_frozen) if self.last_frozen in CACHED_TAPS else 3
        maps = [c.float() for c in cached[: start + 1]]
        x = maps[-1]
        for offset, block in enumerate(self.blocks):
            x = block(x)
            if self.last_frozen + 1 + offset in TAPS:
                maps.append(x)
        if self.last_frozen == 15:  # nothing trains: the cache has no stride-32 map
            raise ValueError("--train-from 0 needs the stride-32 map; use camvid_full_supervision")
        logits: torch.Tensor = self.model.head(self.decoder(maps), size)
        return logits


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("data", nargs="?", default="../shared/datasets/camvid", type=Path)
    parser.add_argument("--input-scale", type=int, choices=[1, 2], default=2)
    parser.add_argument("--train-from", type=int, choices=[8, 16], default=16)
    parser.add_argument("--iterations", type=int, default=1500)
    parser.add_argument("--every", type=int, default=250)
    parser.add_argument("--patience", type=int, default=3, help="evaluations without a gain")
    parser.add_argument("--learning-rate", type=float, default=5e-3)
    parser.add_argument("--encoder-lr", type=float, default=5e-4)
    parser.add_argument("--schedule", choices=["constant", "poly"], default="poly")
    parser.add_argument("--decoder-channels", type=int, default=64)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument(
        "--class-weights",
        choices=CLASS_WEIGHTINGS,
        default="none",
        help="loss weights from the train masks: median frequency, or its square root",
    )
    parser.add_argument("--flip", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--test-curve", action="store_true", help="test mIoU at every eval")
    parser.add_argument("--save", type=Path, default=None, help="best weights of the tail")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache", type=Path, default=Path("runs/camvid_cache"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    classes = read_classes(args.data)
    torch.manual_seed(args.seed)
    config = ModelConfig(
        num_classes=len(classes.classes),
        kind="efficientnet_lite0",
        decoder_channels=args.decoder_channels,
    )
    model = build_model(config)
    assert isinstance(model, PretrainedSegmenter)
    encoder = model.encoder
    assert isinstance(encoder, EfficientNetLiteEncoder)
    started = time.perf_counter()
    masks: dict[str, list[NDArray[np.uint8]]] = {}
    cached: dict[str, list[torch.Tensor]] = {}
    size = (0, 0)
    for name in ("train", "val", "test"):
        split = read_split(args.data, name, classes, 0.5)
        ignore = classes.ignore_index
        masks[name] = [np.where(m == ignore, 255, m).astype(np.uint8) for m in split.masks]
        size = (int(split.masks[0].shape[0]), int(split.masks[0].shape[1]))
        cached[name] = cached_split(
            args.cache, name, args.input_scale, encoder, model, split.images
        )
    print(f"features ready: {time.perf_counter() - started:.0f} s (load {load_avg()})", flush=True)

    tail = Tail(model, LAST_FROZEN[args.train_from])
    tail.train()
    tail.blocks.eval()  # pretrained batch-norm statistics kept
    head_params = [*model.decoder.parameters(), *model.classifier.parameters()]
    optimizer = torch.optim.Adam(
        [
            {"params": head_params, "lr": args.learning_rate, "base": args.learning_rate},
            {
                "params": list(tail.blocks.parameters()),
                "lr": args.encoder_lr,
                "base": args.encoder_lr,
            },
        ]
    )
    num_classes = len(classes.classes)
    train_masks = torch.from_numpy(np.stack(masks["train"])).long()
    weights: torch.Tensor | None = None
    named = class_weights_named(args.class_weights, masks["train"], num_classes)
    if named is not None:
        weights = torch.from_numpy(named)
        rounded = np.round(named, 2).tolist()
        print("class weights:", dict(zip(classes.names, rounded, strict=True)), flush=True)

    @torch.no_grad()
    def evaluate(name: str, tta: bool = False) -> NDArray[np.int64]:
        tail.eval()
        matrix = np.zeros((num_classes, num_classes), np.int64)
        maps = cached[name]
        for start in range(0, len(masks[name]), 8):
            batch = [m[start : start + 8] for m in maps]
            logits = tail(batch, size).softmax(1)
            if tta:
                logits = logits + tail([m.flip(-1) for m in batch], size).softmax(1).flip(-1)
            for offset, prediction in enumerate(logits.argmax(1).numpy()):
                matrix += confusion_matrix(
                    prediction, masks[name][start + offset], num_classes, 255
                )
        tail.train()
        tail.blocks.eval()
        return matrix

    rng = np.random.default_rng(args.seed)
    count = len(masks["train"])
    best = (-1.0, 0)
    best_state = copy.deepcopy(tail.state_dict())
    waited = 0
    test_now = float("nan")
    losses: list[float] = []
    started = time.perf_counter()
    iteration = 0
    for iteration in range(1, args.iterations + 1):
        if args.schedule == "poly":
            factor = (1 - (iteration - 1) / args.iterations) ** 0.9
            for group in optimizer.param_groups:
                group["lr"] = group["base"] * factor
        chosen = torch.from_numpy(rng.choice(count, size=args.batch, replace=True))
        batch = [m[chosen] for m in cached["train"]]
        target = train_masks[chosen]
        if args.flip:
            flips = torch.from_numpy(rng.random(args.batch) < 0.5)
            batch = [torch.where(flips.view(-1, 1, 1, 1), m.flip(-1), m) for m in batch]
            target = torch.where(flips.view(-1, 1, 1), target.flip(-1), target)
        loss = partial_mask_loss(tail(batch, size), target, weights)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]
        optimizer.step()
        losses.append(float(loss.detach()))
        if iteration % args.every == 0 or iteration == args.iterations:
            val = 100 * mean_iou(evaluate("val"))
            test_now = 100 * mean_iou(evaluate("test")) if args.test_curve else float("nan")
            if val > best[0]:
                best, waited = (val, iteration), 0
                best_state = copy.deepcopy(tail.state_dict())
            else:
                waited += 1
            print(
                f"iteration {iteration}: train loss {np.mean(losses[-args.every :]):.3f}, "
                f"val mIoU {val:.1f}, test mIoU {test_now:.1f} "
                f"({time.perf_counter() - started:.0f} s, load {load_avg()})",
                flush=True,
            )
            if waited >= args.patience:
                break
    last = test_now
    if not args.test_curve and best[1] != iteration:
        last = 100 * mean_iou(evaluate("test"))
    tail.load_state_dict(best_state)
    test = evaluate("test")
    if best[1] == iteration:
        last = 100 * mean_iou(test)
    test_tta = evaluate("test", tta=True)
    if args.save is not None:
        torch.save(best_state, args.save)
    print(
        f"RESULT seed {args.seed} x{args.input_scale} from stride {args.train_from}: "
        f"best val {best[0]:.1f} at {best[1]}, test {100 * mean_iou(test):.1f} "
        f"(flip-averaged {100 * mean_iou(test_tta):.1f}) "
        f"(last iteration {iteration}: test {last:.1f}); "
        f"training {time.perf_counter() - started:.0f} s, load {load_avg()}",
        flush=True,
    )
    per_class = np.round(100 * iou_per_class(test), 1)
    print("test IoU per class:", dict(zip(classes.names, per_class.tolist(), strict=True)))


if __name__ == "__main__":
    main()
