"""Segmentation models in plain torch with dropout before the classifier, so MC dropout works.

Two kinds behind one factory (``build_model``): ``unet``, a U-Net trained from scratch, and
a pretrained encoder (any name registered in ``worker.engine.encoders``, e.g.
``efficientnet_lite0``) under a small FPN decoder. Every model is split into a
deterministic ``trunk`` (encoder + decoder) and a stochastic ``head`` (dropout + 1x1
classifier, then logits resized to the input). Uncertainty's cheap path runs the trunk
once and the head T times (DESIGN.md §1.3). A pretrained model with a frozen encoder can
also run from cached encoder features (``encode`` once, ``decode`` + ``head`` after).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from worker.engine.encoders import encoder_names, encoder_spec, load_matching_state, read_state_dict

# Encoder features are kept (cached, and rounded in the full forward too) in this dtype, so
# a model run from cached features computes exactly what the whole model computes.
FEATURE_DTYPE = torch.float16
ZOOMS = (1, 2)


@dataclass(frozen=True)
class ModelConfig:
    num_classes: int
    in_channels: int = 3
    width: int = 16
    depth: int = 4
    dropout: float = 0.5
    # Dropout inside the decoder too (the trunk then becomes stochastic and the cheap
    # uncertainty path is only an approximation of T full passes).
    decoder_dropout: float = 0.0
    # "unet" (from scratch; width and depth apply) or a registered encoder name.
    kind: str = "unet"
    # A local weights file for the encoder; None takes the weights its package ships.
    encoder_weights: str | None = None
    decoder_channels: int = 64
    # A frozen encoder keeps its ImageNet weights and batch-norm statistics; only the
    # decoder and classifier train, and they can train from cached features.
    freeze_encoder: bool = True
    # 2: the encoder sees the image upsampled 2x and its maps are taken one stride deeper,
    # so the decoder keeps its grid (stride 4 of the image) and its cost; ImageNet encoders
    # see small objects at a scale closer to their training (CamVid 240x180: +3.4 test mIoU
    # at full supervision for 4x the encoder's time per image).
    encoder_zoom: int = 1

    def __post_init__(self) -> None:
        if self.num_classes < 2:
            raise ValueError(f"num_classes must be at least 2, got {self.num_classes}")
        if self.width < 1 or self.depth < 1:
            raise ValueError(f"width and depth must be positive, got {self.width}, {self.depth}")
        for name in ("dropout", "decoder_dropout"):
            p = getattr(self, name)
            if not 0.0 <= p < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {p}")
        if self.kind not in model_kinds():
            raise ValueError(f"unknown model kind {self.kind!r}; known: {model_kinds()}")
        if self.kind != "unet" and self.in_channels != 3:
            raise ValueError(f"a pretrained encoder takes 3 channels, got {self.in_channels}")
        if self.decoder_channels < 1:
            raise ValueError(f"decoder_channels must be positive, got {self.decoder_channels}")
        if self.encoder_zoom not in ZOOMS or (self.kind == "unet" and self.encoder_zoom != 1):
            raise ValueError(
                f"encoder_zoom must be one of {ZOOMS} for a pretrained encoder (1 for unet), "
                f"got {self.encoder_zoom}"
            )

    @property
    def pretrained(self) -> bool:
        return self.kind != "unet"


def model_kinds() -> list[str]:
    return ["unet", *encoder_names()]


class ByteDropout(nn.Dropout):
    """Element-wise dropout that draws one random byte per element.

    MC dropout samples the head T times per image, and on CPU ``F.dropout``'s per-element
    Bernoulli draws dominated scoring (about 14x slower than this on 2 cores). ``p`` is
    rounded to a multiple of 1/256 (0.5 is exact). Draws from torch's global generator, so
    ``torch.manual_seed`` reproduces it.
    """

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return features
        count = features.numel()
        words = torch.randint(
            -(2**63), 2**63 - 1, ((count + 7) // 8,), dtype=torch.int64, device=features.device
        )
        random_bytes = words.view(torch.uint8)[:count].view(features.shape)
        keep = random_bytes >= round(self.p * 256)
        return torch.where(keep, features / (1.0 - self.p), torch.zeros_like(features))


class ConvBlock(nn.Sequential):
    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(
            nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )


class SegmentationModel(nn.Module):
    """The contract every model kind keeps: ``forward(x) == head(trunk(x), x.shape[-2:])``,
    the trunk deterministic in eval mode, all stochasticity in the head's dropout."""

    config: ModelConfig

    def trunk(self, images: torch.Tensor) -> torch.Tensor:
        """images: (B, C_in, H, W) normalised (``images_to_tensor``). Returns features."""
        raise NotImplementedError

    def head(self, features: torch.Tensor, size: tuple[int, int] | None = None) -> torch.Tensor:
        """Trunk features -> logits (B, num_classes, H, W); ``size`` is the input's (H, W).
        Without a size, logits at the trunk's own resolution (MC sampling works there)."""
        raise NotImplementedError

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        height, width = images.shape[-2:]
        return self.head(self.trunk(images), (int(height), int(width)))


class UNet(SegmentationModel):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        widths = [config.width * 2**level for level in range(config.depth + 1)]
        self.encoders = nn.ModuleList()
        in_channels = config.in_channels
        for channels in widths:
            self.encoders.append(ConvBlock(in_channels, channels))
            in_channels = channels
        self.upsamples = nn.ModuleList()
        self.decoders = nn.ModuleList()
        for level in reversed(range(config.depth)):
            self.upsamples.append(nn.ConvTranspose2d(widths[level + 1], widths[level], 2, stride=2))
            self.decoders.append(ConvBlock(widths[level] * 2, widths[level]))
        self.decoder_dropout = nn.Dropout2d(config.decoder_dropout)
        self.head_dropout = ByteDropout(config.dropout)
        self.classifier = nn.Conv2d(widths[0], config.num_classes, 1)

    def trunk(self, images: torch.Tensor) -> torch.Tensor:
        """images: (B, C_in, H, W) float. Returns features (B, width, H, W)."""
        height, width = images.shape[-2:]
        multiple = 2**self.config.depth
        pad_h, pad_w = (-height) % multiple, (-width) % multiple
        x = F.pad(images, (0, pad_w, 0, pad_h), mode="reflect") if pad_h or pad_w else images
        skips = []
        for level, encoder in enumerate(self.encoders):
            if level > 0:
                x = F.max_pool2d(x, 2)
            x = encoder(x)
            skips.append(x)
        skips.pop()
        for upsample, decoder in zip(self.upsamples, self.decoders, strict=True):
            x = upsample(x)
            x = decoder(torch.cat([x, skips.pop()], dim=1))
            if self.config.decoder_dropout > 0:
                x = self.decoder_dropout(x)
        return x[..., :height, :width]

    def head(self, features: torch.Tensor, size: tuple[int, int] | None = None) -> torch.Tensor:
        """features: (B, width, H, W) at the input's size. Returns logits (B, num_classes, H, W)."""
        logits: torch.Tensor = self.classifier(self.head_dropout(features))
        return logits


class FPNDecoder(nn.Module):
    """Lateral 1x1 convs on each scale, summed top-down with bilinear upsampling (Lin et al.
    2017, FPN) down to stride 4, then a depthwise 3x3 conv to fuse neighbours.

    The stride-2 map is average-pooled onto the stride-4 grid before its lateral: a decoder
    at stride 2 cost about 4x the time per training step on a CPU for a small gain.
    """

    def __init__(self, in_channels: Sequence[int], channels: int) -> None:
        super().__init__()
        self.laterals = nn.ModuleList(nn.Conv2d(c, channels, 1) for c in in_channels)
        self.fuse = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1, groups=channels, bias=False),
            nn.BatchNorm2d(channels),
            nn.ReLU(inplace=True),
        )

    def forward(self, features: Sequence[torch.Tensor]) -> torch.Tensor:
        """features: strides 2, 4, ..., (B, C_i, h_i, w_i). Returns (B, channels, h_1, w_1)."""
        if len(features) != len(self.laterals) or len(features) < 2:
            raise ValueError(f"expected {len(self.laterals)} feature maps, got {len(features)}")
        grid = (int(features[1].shape[-2]), int(features[1].shape[-1]))
        finest = F.adaptive_avg_pool2d(features[0], grid)
        maps = [finest, *features[1:]]
        x: torch.Tensor = self.laterals[-1](maps[-1])
        for lateral, feature in zip(reversed(self.laterals[:-1]), reversed(maps[:-1]), strict=True):
            x = lateral(feature) + F.interpolate(
                x, size=feature.shape[-2:], mode="bilinear", align_corners=False
            )
        fused: torch.Tensor = self.fuse(x)
        return fused


class PretrainedSegmenter(SegmentationModel):
    """A registered pretrained encoder, an FPN decoder, dropout and a 1x1 classifier; the
    logits are resized bilinearly to the input size.

    Takes the same input as the U-Net (``images_to_tensor``) and re-normalises it to the
    encoder's statistics (ImageNet mean/std), so callers need not know the kind.
    """

    def __init__(self, config: ModelConfig, encoder: nn.Module) -> None:
        super().__init__()
        spec = encoder_spec(config.kind)
        self.config = config
        self.encoder = encoder
        # Each 2x of zoom drops the finest map, so the decoder's grid stays at stride 4.
        self.skipped_maps = config.encoder_zoom.bit_length() - 1
        channels: tuple[int, ...] = tuple(encoder.channels)[self.skipped_maps :]  # type: ignore[arg-type]
        self.decoder = FPNDecoder(channels, config.decoder_channels)
        self.head_dropout = ByteDropout(config.dropout)
        self.classifier = nn.Conv2d(config.decoder_channels, config.num_classes, 1)
        mean = torch.tensor(spec.mean).view(1, 3, 1, 1)
        std = torch.tensor(spec.std).view(1, 3, 1, 1)
        # images_to_tensor gives (x - IMAGE_MEAN) / IMAGE_STD; this maps it to (x - mean) / std.
        self.register_buffer("input_scale", IMAGE_STD / std, persistent=False)
        self.register_buffer("input_shift", (IMAGE_MEAN - mean) / std, persistent=False)
        if config.freeze_encoder:
            self.encoder.requires_grad_(False)
            self.encoder.eval()

    @property
    def frozen(self) -> bool:
        return self.config.freeze_encoder

    def train(self, mode: bool = True) -> PretrainedSegmenter:
        super().train(mode)
        if self.frozen:
            self.encoder.eval()  # a frozen encoder keeps its batch-norm statistics
        return self

    def encode(self, images: torch.Tensor) -> list[torch.Tensor]:
        """images: (B, 3, H, W) normalised. Returns the encoder's maps, finest first, float32;
        when frozen, without gradient and rounded through FEATURE_DTYPE like a cache."""
        x = images * self.input_scale + self.input_shift  # type: ignore[operator]
        zoom = self.config.encoder_zoom
        if zoom != 1:
            x = F.interpolate(x, scale_factor=zoom, mode="bilinear", align_corners=False)
        if not self.frozen:
            return list(self.encoder(x))[self.skipped_maps :]
        with torch.no_grad():
            maps = list(self.encoder(x))[self.skipped_maps :]
            return [f.to(FEATURE_DTYPE).float() for f in maps]

    def decode(self, features: Sequence[torch.Tensor]) -> torch.Tensor:
        """Encoder maps (float32, finest first) -> decoder features (B, D, ~H/4, ~W/4)."""
        decoded: torch.Tensor = self.decoder(features)
        return decoded

    def trunk(self, images: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(images))

    def head(self, features: torch.Tensor, size: tuple[int, int] | None = None) -> torch.Tensor:
        """features: (B, D, h, w). Returns logits (B, num_classes, *size), resized
        bilinearly; without a size, at the decoder's resolution (h, w)."""
        logits: torch.Tensor = self.classifier(self.head_dropout(features))
        if size is None or tuple(logits.shape[-2:]) == tuple(size):
            return logits
        return F.interpolate(logits, size=size, mode="bilinear", align_corners=False)


def encoder_weights_path(config: ModelConfig) -> Path:
    """The encoder weights file ``build_model`` reads for a pretrained config."""
    if not config.pretrained:
        raise ValueError(f"model kind {config.kind!r} has no pretrained encoder")
    if config.encoder_weights is not None:
        return Path(config.encoder_weights)
    default = encoder_spec(config.kind).default_weights
    if default is None:
        raise ValueError(f"encoder {config.kind!r} ships no weights: give encoder_weights")
    return default()


def build_model(config: ModelConfig, weights_path: Path | None = None) -> SegmentationModel:
    """A model of ``config.kind``; nothing is downloaded.

    A pretrained kind loads its encoder from ``config.encoder_weights`` or the package's
    file. ``weights_path`` optionally loads a whole-model state dict over that. Weights are
    read with ``weights_only=True`` and strict key and shape matching; a missing, corrupt or
    mismatched file raises ValueError naming the path and the fault.
    """
    model: SegmentationModel
    if config.pretrained:
        spec = encoder_spec(config.kind)
        encoder = spec.build()
        spec.load_weights(encoder, encoder_weights_path(config))
        model = PretrainedSegmenter(config, encoder)
    else:
        model = UNet(config)
    if weights_path is not None:
        load_matching_state(model, read_state_dict(weights_path), weights_path)
    return model


def enable_mc_dropout(model: nn.Module) -> None:
    """Evaluation mode (frozen batch-norm statistics) with dropout layers left stochastic."""
    model.eval()
    for module in model.modules():
        if isinstance(module, nn.Dropout | nn.Dropout2d):
            module.train()


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA when present; ``cuda`` without a GPU is an error, not a fallback."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was asked for but no CUDA GPU is available")
    if name not in ("cpu", "cuda"):
        raise ValueError(f"device must be auto, cpu or cuda, got {name!r}")
    return torch.device(name)


IMAGE_MEAN = 0.5
IMAGE_STD = 0.25


def host_to_device(tensor: torch.Tensor, device: torch.device) -> torch.Tensor:
    """A CPU tensor on ``device``: to a GPU through pinned (page-locked) memory with an
    asynchronous copy, which kernels queued after it on the stream wait for."""
    if device.type != "cuda":
        return tensor.to(device)
    return tensor.pin_memory().to(device, non_blocking=True)


def images_to_tensor(images: torch.Tensor) -> torch.Tensor:
    """(B, H, W, 3) uint8 -> normalised (B, 3, H, W) float32 on the same device."""
    return (images.permute(0, 3, 1, 2).float() / 255.0 - IMAGE_MEAN) / IMAGE_STD
