"""Annotator tasks, mask saves and the submission history."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from backend.review.schemas import ReviewNote


class TaskLinks(BaseModel):
    model_config = ConfigDict(json_schema_serialization_defaults_required=True)

    image: str
    mask: str
    superpixels: str
    uncertainty: str | None
    preview: str | None = Field(
        default=None,
        description="A large image's preview (JPEG, at most 2 Mpx) to show while `image` "
        "downloads; null for images of at most TESSERA_LARGE_IMAGE_PIXELS pixels.",
    )


class Task(BaseModel):
    """An image handed to one annotator until ``lease_expires_at``."""

    model_config = ConfigDict(
        json_schema_serialization_defaults_required=True,
        json_schema_extra={
            "examples": [
                {
                    "query_id": 12,
                    "round_id": 3,
                    "round_number": 2,
                    "image_id": 7,
                    "width": 480,
                    "height": 360,
                    "superpixel_map_id": 7,
                    "superpixel_ids": [4, 9, 17],
                    "superpixel_scores": [0.91, 0.88, 0.87],
                    "predicted_classes": [1, 1, 2],
                    "mask_version": 0,
                    "lease_expires_at": "2026-01-01T12:15:00Z",
                    "links": {
                        "image": "/api/v1/projects/1/images/7/file",
                        "mask": "/api/v1/projects/1/images/7/mask",
                        "superpixels": "/api/v1/projects/1/images/7/superpixels?map_id=7",
                        "uncertainty": "/api/v1/projects/1/queries/12/uncertainty",
                        "preview": None,
                    },
                }
            ]
        },
    )

    query_id: int
    round_id: int
    round_number: int
    image_id: int
    width: int
    height: int
    superpixel_map_id: int
    superpixel_ids: list[int] = Field(description="The superpixels to label in this image.")
    superpixel_scores: list[float]
    predicted_classes: list[int] | None = Field(
        default=None,
        description="The model's class for each of superpixel_ids (same order), for the "
        "annotator to accept as a pre-fill and correct; null when the round had no model.",
    )
    mask_version: int = Field(description="Send as If-Match when saving the mask.")
    lease_expires_at: datetime
    review_note: ReviewNote | None = Field(
        default=None,
        description="The lead's comment when this task was sent back in review; null otherwise.",
    )
    links: TaskLinks


SuperpixelId = Annotated[int, Field(ge=0)]
PixelOffset = Annotated[int, Field(ge=0)]
RunLength = Annotated[int, Field(ge=1)]
ClassValue = Annotated[int, Field(ge=0, le=255)]


class MaskEditBody(BaseModel):
    """What changed since the version named in If-Match: whole queried superpixels filled
    with a class, and brushed pixel runs inside queried superpixels (class 255 erases)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "superpixel_map_id": 7,
                    "fills": [[4, 1], [9, 2]],
                    "runs": [[48020, 6, 1], [48500, 8, 1]],
                    "clicks": 4,
                    "seconds": 12.5,
                    "prefilled": False,
                    "done": False,
                }
            ]
        },
    )

    superpixel_map_id: int = Field(description="The task's map; fills name its superpixels.")
    fills: list[tuple[SuperpixelId, ClassValue]] = Field(
        default_factory=list,
        max_length=65_536,
        description="[superpixel id, class]: every pixel of the superpixel takes the class.",
    )
    runs: list[tuple[PixelOffset, RunLength, ClassValue]] = Field(
        default_factory=list,
        max_length=2_000_000,
        description="[offset, length, class]: pixels offset .. offset + length - 1 in "
        "row-major order (offset = y * width + x) take the class. Sorted by offset, not "
        "overlapping, each pixel inside a queried superpixel that is not also filled.",
    )
    clicks: int = Field(default=0, ge=0, le=10_000_000)
    seconds: float = Field(default=0.0, ge=0, le=86_400)
    prefilled: bool = Field(
        default=False, description="The annotator started from the model's predicted classes."
    )
    done: bool = Field(default=False, description="Marks the image's query as labeled.")


class SaveResult(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "image_id": 7,
                    "version": 3,
                    "changed_pixels": 2048,
                    "changed_superpixels": 2,
                    "labeled_pixels": 40960,
                    "query_done": True,
                }
            ]
        }
    )

    image_id: int
    version: int = Field(description="The new version (also in the ETag header).")
    changed_pixels: int
    changed_superpixels: int
    labeled_pixels: int
    query_done: bool


class SubmissionRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    version: int
    user_id: int | None
    round_id: int | None
    query_id: int | None
    created_at: datetime
    changed_pixels: int
    changed_superpixels: int
    superpixel_ids: list[int]
    clicks: int
    seconds: float
    prefilled: bool
