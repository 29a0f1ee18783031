"""Projects, their active-learning settings, label classes and members."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from backend.models import Role, Strategy, SuperpixelAlgorithm, Uncertainty


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
    budget_pixels: int | None = Field(default=None, gt=0)
    budget_hours: float | None = Field(default=None, gt=0)


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
    budget_pixels: int | None = Field(default=None, gt=0)
    budget_hours: float | None = Field(default=None, gt=0)


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
    model_config = ConfigDict(from_attributes=True)

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
