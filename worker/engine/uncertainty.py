"""MC-dropout uncertainty: T stochastic passes reduced to one score per pixel.

Running sums of the softmax and of the per-pass entropy are kept instead of all T samples,
so memory does not grow with T.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from worker.engine.model import SegmentationModel, enable_mc_dropout

METHODS = ("entropy", "bald", "margin", "paper")
_EPS = 1e-12


@dataclass
class SoftmaxMoments:
    """mean_probs: (B, C, H, W); mean_entropy: (B, H, W), natural log, or None when the
    score does not need it (entropy and margin look only at the mean)."""

    mean_probs: torch.Tensor
    mean_entropy: torch.Tensor | None

    def resized(self, size: tuple[int, int]) -> SoftmaxMoments:
        """Both moments resized bilinearly to (H, W); interpolated probabilities still sum
        to one. A model whose head samples below the input's resolution (the pretrained
        decoder works at stride 4) is sampled there, T times, and resized once."""
        if tuple(self.mean_probs.shape[-2:]) == tuple(size):
            return self
        probs = F.interpolate(self.mean_probs, size=size, mode="bilinear", align_corners=False)
        entropy = (
            None
            if self.mean_entropy is None
            else F.interpolate(
                self.mean_entropy[:, None], size=size, mode="bilinear", align_corners=False
            )[:, 0]
        )
        return SoftmaxMoments(probs, entropy)


def _entropy(probs: torch.Tensor) -> torch.Tensor:
    return -(probs * torch.log(probs.clamp_min(_EPS))).sum(dim=1)


def _accumulate(
    logits_of_pass: Callable[[], torch.Tensor], samples: int, with_entropy: bool
) -> SoftmaxMoments:
    sum_probs: torch.Tensor | None = None
    sum_entropy: torch.Tensor | None = None
    for _ in range(samples):
        probs = torch.softmax(logits_of_pass().float(), dim=1)
        sum_probs = probs if sum_probs is None else sum_probs + probs
        if with_entropy:
            entropy = _entropy(probs)
            sum_entropy = entropy if sum_entropy is None else sum_entropy + entropy
    assert sum_probs is not None
    mean_entropy = None if sum_entropy is None else sum_entropy / samples
    return SoftmaxMoments(sum_probs / samples, mean_entropy)


@torch.no_grad()
def mc_softmax_moments(
    model: SegmentationModel,
    images: torch.Tensor,
    samples: int,
    cheap: bool = True,
    bf16: bool = False,
    with_entropy: bool = True,
) -> SoftmaxMoments:
    """Mean softmax and mean per-pass entropy over ``samples`` dropout passes.

    images: (B, 3, H, W) normalised float. ``cheap`` runs the deterministic trunk once
    and samples only dropout + classifier; with dropout only in the head it draws exactly
    what T full passes draw (same random stream, same result).
    """
    if samples < 1:
        raise ValueError(f"samples must be >= 1, got {samples}")
    if images.ndim != 4:
        raise ValueError(f"images must be (B, 3, H, W), got shape {tuple(images.shape)}")
    if cheap:
        with torch.autocast(images.device.type, dtype=torch.bfloat16, enabled=bf16):
            was_training = model.training
            enable_mc_dropout(model)
            features = model.trunk(images)
            model.train(was_training)
        size = (int(images.shape[-2]), int(images.shape[-1]))
        return mc_moments_from_trunk(model, features, size, samples, bf16, with_entropy)
    was_training = model.training
    enable_mc_dropout(model)
    with torch.autocast(images.device.type, dtype=torch.bfloat16, enabled=bf16):
        moments = _accumulate(lambda: model.head(model.trunk(images)), samples, with_entropy)
    model.train(was_training)
    return moments.resized((int(images.shape[-2]), int(images.shape[-1])))


@torch.no_grad()
def mc_moments_from_trunk(
    model: SegmentationModel,
    features: torch.Tensor,
    size: tuple[int, int],
    samples: int,
    bf16: bool = False,
    with_entropy: bool = True,
) -> SoftmaxMoments:
    """The cheap path's sampling: ``samples`` head passes (dropout + classifier) over trunk
    features computed once, e.g. decoded from cached encoder features, at the head's own
    resolution; the moments are then resized to ``size``, the input images' (H, W)."""
    if samples < 1:
        raise ValueError(f"samples must be >= 1, got {samples}")
    was_training = model.training
    enable_mc_dropout(model)
    with torch.autocast(features.device.type, dtype=torch.bfloat16, enabled=bf16):
        moments = _accumulate(lambda: model.head(features), samples, with_entropy)
    model.train(was_training)
    return moments.resized(size)


def pixel_scores_from_moments(moments: SoftmaxMoments, method: str) -> torch.Tensor:
    """Per-pixel uncertainty (B, H, W); higher means less certain.

    - entropy: entropy of the mean softmax (nats)
    - bald: mutual information = entropy of the mean minus mean entropy
    - margin: 1 - (top1 - top2) of the mean softmax
    - paper: entropy of the mean PLUS mean entropy, base 2, as the paper's code computes it
    """
    entropy_of_mean = _entropy(moments.mean_probs)
    if method == "entropy":
        return entropy_of_mean
    if method == "margin":
        top2 = moments.mean_probs.topk(2, dim=1).values
        return 1.0 - (top2[:, 0] - top2[:, 1])
    if method not in ("bald", "paper"):
        raise ValueError(f"unknown uncertainty method {method!r}; known: {METHODS}")
    mean_entropy = moments.mean_entropy
    if mean_entropy is None:
        raise ValueError(f"{method} needs the mean per-pass entropy; sample with_entropy=True")
    if method == "bald":
        return (entropy_of_mean - mean_entropy).clamp_min(0.0)
    return (entropy_of_mean + mean_entropy) / math.log(2.0)


def pixel_uncertainty(
    model: SegmentationModel,
    images: torch.Tensor,
    method: str = "entropy",
    samples: int = 20,
    cheap: bool = True,
    bf16: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-pixel scores (B, H, W) float32 and the mean-softmax prediction (B, H, W) int64."""
    if method not in METHODS:
        raise ValueError(f"unknown uncertainty method {method!r}; known: {METHODS}")
    moments = mc_softmax_moments(
        model, images, samples, cheap=cheap, bf16=bf16, with_entropy=method in ("bald", "paper")
    )
    return pixel_scores_from_moments(moments, method).float(), moments.mean_probs.argmax(dim=1)


def pixel_uncertainty_from_trunk(
    model: SegmentationModel,
    features: torch.Tensor,
    size: tuple[int, int],
    method: str = "entropy",
    samples: int = 20,
    bf16: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``pixel_uncertainty`` from trunk features computed once (the cheap path)."""
    if method not in METHODS:
        raise ValueError(f"unknown uncertainty method {method!r}; known: {METHODS}")
    moments = mc_moments_from_trunk(
        model, features, size, samples, bf16=bf16, with_entropy=method in ("bald", "paper")
    )
    return pixel_scores_from_moments(moments, method).float(), moments.mean_probs.argmax(dim=1)
