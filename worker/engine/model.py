"""A U-Net in plain torch with dropout before the classifier, so MC dropout works.

The network is split into a deterministic ``trunk`` (encoder + decoder) and a stochastic
``head`` (dropout + 1x1 classifier). Uncertainty's cheap path runs the trunk once and the
head T times (DESIGN.md §1.3).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn


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

    def __post_init__(self) -> None:
        if self.num_classes < 2:
            raise ValueError(f"num_classes must be at least 2, got {self.num_classes}")
        if self.width < 1 or self.depth < 1:
            raise ValueError(f"width and depth must be positive, got {self.width}, {self.depth}")
        for name in ("dropout", "decoder_dropout"):
            p = getattr(self, name)
            if not 0.0 <= p < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {p}")


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


class UNet(nn.Module):
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

    def head(self, features: torch.Tensor) -> torch.Tensor:
        """features: (B, width, H, W). Returns logits (B, num_classes, H, W)."""
        logits: torch.Tensor = self.classifier(self.head_dropout(features))
        return logits

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.trunk(images))


def build_model(config: ModelConfig, weights_path: Path | None = None) -> UNet:
    """A fresh U-Net, optionally loaded from a local state-dict file (nothing is downloaded)."""
    model = UNet(config)
    if weights_path is not None:
        state = torch.load(weights_path, map_location="cpu", weights_only=True)
        model.load_state_dict(state)
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


def images_to_tensor(images: torch.Tensor) -> torch.Tensor:
    """(B, H, W, 3) uint8 -> normalised (B, 3, H, W) float32 on the same device."""
    return (images.permute(0, 3, 1, 2).float() / 255.0 - IMAGE_MEAN) / IMAGE_STD
