"""Annotator tasks, mask saves and the submission history."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class TaskLinks(BaseModel):
    image: str
    mask: str
    superpixels: str
    uncertainty: str | None


class Task(BaseModel):
    """An image handed to one annotator until ``lease_expires_at``."""

    model_config = ConfigDict(
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
                    "mask_version": 0,
                    "lease_expires_at": "2026-01-01T12:15:00Z",
                    "links": {
                        "image": "/api/v1/projects/1/images/7/file",
                        "mask": "/api/v1/projects/1/images/7/mask",
                        "superpixels": "/api/v1/projects/1/images/7/superpixels?map_id=7",
                        "uncertainty": "/api/v1/projects/1/queries/12/uncertainty",
                    },
                }
            ]
        }
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
    mask_version: int = Field(description="Send as If-Match when saving the mask.")
    lease_expires_at: datetime
    links: TaskLinks


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
