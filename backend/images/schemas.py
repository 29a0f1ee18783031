"""Images as listed by the API, and the answer to an upload."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from core.models import ImageStatus, Split


class ImageRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    filename: str = Field(description="The uploaded name (display only).")
    content_type: str
    width: int
    height: int
    sha256: str
    split: Split
    status: ImageStatus
    created_at: datetime
    annotation_version: int = Field(description="Current mask version; send it as If-Match.")
    labeled_pixels: int
    has_ground_truth: bool


class DuplicateRead(BaseModel):
    filename: str
    sha256: str
    existing_image_id: int | None = Field(
        description="The stored image with the same content; null if repeated in this upload."
    )


class UploadReport(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "created": [
                        {
                            "id": 7,
                            "filename": "0001TP_006690.png",
                            "content_type": "image/png",
                            "width": 480,
                            "height": 360,
                            "sha256": "9f2c...",
                            "split": "pool",
                            "status": "processing",
                            "created_at": "2026-01-01T12:00:00Z",
                            "annotation_version": 0,
                            "labeled_pixels": 0,
                            "has_ground_truth": False,
                        }
                    ],
                    "duplicates": [
                        {"filename": "copy.png", "sha256": "9f2c...", "existing_image_id": 7}
                    ],
                }
            ]
        }
    )

    created: list[ImageRead]
    duplicates: list[DuplicateRead]


class ImageUpdate(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"split": "validation"}]})

    split: Split
