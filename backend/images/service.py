"""Image ingest, ground truth and superpixel maps. Functions flush; the caller commits."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.images.superpixels import encode_superpixels
from backend.images.validation import (
    DecodedImage,
    UploadedFile,
    UploadRefused,
    decode_image,
    decode_mask,
    expand_uploads,
)
from backend.masks import encode_mask_png
from backend.models import Annotation, Image, ImageStatus, Project, Split, SuperpixelMap
from backend.projects.service import class_indices
from backend.settings import Settings


@dataclass(frozen=True)
class Duplicate:
    filename: str
    sha256: str
    existing_image_id: int | None  # None: repeated within the same upload


@dataclass
class IngestResult:
    created: list[Image] = field(default_factory=list)
    duplicates: list[Duplicate] = field(default_factory=list)


def validate_uploads(uploads: list[UploadedFile], settings: Settings) -> list[DecodedImage]:
    """Every image of a request, decoded; raises UploadRefused on the first bad one."""
    files = expand_uploads(uploads, settings)
    if not files:
        raise UploadRefused(422, "No files in the upload.")
    return [decode_image(file, settings) for file in files]


def ingest_images(
    session: Session,
    project: Project,
    uploads: list[UploadedFile],
    split: Split,
    settings: Settings,
) -> IngestResult:
    """Validates all uploads, then stores the new images (each with an empty annotation).

    All-or-nothing: nothing is added to the session unless every file passed. Images whose
    SHA-256 is already in the project (or earlier in this upload) are reported, not stored.
    """
    decoded = validate_uploads(uploads, settings)
    hashes = {image.sha256 for image in decoded}
    rows = session.execute(
        select(Image.sha256, Image.id).where(
            Image.project_id == project.id, Image.sha256.in_(hashes)
        )
    )
    existing = {sha256: image_id for sha256, image_id in rows}
    result = IngestResult()
    seen: set[str] = set()
    for image in decoded:
        if image.sha256 in existing or image.sha256 in seen:
            result.duplicates.append(
                Duplicate(image.name, image.sha256, existing.get(image.sha256))
            )
            continue
        seen.add(image.sha256)
        row = Image(
            project_id=project.id,
            filename=image.name,
            content_type=image.content_type,
            width=image.width,
            height=image.height,
            sha256=image.sha256,
            split=split,
            status=ImageStatus.processing,
            data=image.data,
            thumbnail_jpeg=image.thumbnail_jpeg,
        )
        session.add(row)
        result.created.append(row)
    session.flush()
    for row in result.created:
        session.add(Annotation(image_id=row.id, version=0, labeled_pixels=0))
    session.flush()
    return result


def set_ground_truth(
    session: Session, image: Image, name: str, data: bytes, settings: Settings
) -> NDArray[np.uint8]:
    """Validates and stores a ground-truth mask for ``image``; returns the decoded mask."""
    mask = decode_mask(
        name,
        data,
        width=image.width,
        height=image.height,
        class_indices=class_indices(session, image.project_id),
        settings=settings,
    )
    image.ground_truth_png = encode_mask_png(mask)
    session.flush()
    return mask


def store_superpixel_map(
    session: Session,
    image: Image,
    labels: NDArray[np.integer],
    *,
    size: int,
    algorithm: str,
) -> SuperpixelMap:
    """Caches an image's superpixels (the worker's ingest step; tests call it directly)."""
    if labels.shape != (image.height, image.width):
        raise ValueError(
            f"labels of shape {labels.shape} do not match image {image.height}x{image.width}"
        )
    dtype, blob, count = encode_superpixels(labels)
    row = session.scalar(
        select(SuperpixelMap).where(
            SuperpixelMap.image_id == image.id,
            SuperpixelMap.size == size,
            SuperpixelMap.algorithm == algorithm,
        )
    )
    if row is None:
        row = SuperpixelMap(image_id=image.id, size=size, algorithm=algorithm)
        session.add(row)
    row.dtype, row.labels_zlib, row.count = dtype, blob, count
    session.flush()
    return row


def current_superpixel_map(
    session: Session, image: Image, project: Project
) -> SuperpixelMap | None:
    """The map for the project's current superpixel size and algorithm, if computed."""
    return session.scalar(
        select(SuperpixelMap).where(
            SuperpixelMap.image_id == image.id,
            SuperpixelMap.size == project.superpixel_size,
            SuperpixelMap.algorithm == project.superpixel_algorithm.value,
        )
    )
