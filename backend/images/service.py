"""Image ingest, ground truth and finding superpixel maps (the worker stores them:
``core.superpixel_maps``). Functions flush; the caller commits."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlalchemy.orm.interfaces import ORMOption

from backend.images.validation import (
    UploadRefused,
    UploadSource,
    decode_mask,
    decode_upload,
    iter_upload_files,
    upright_bytes,
)
from backend.projects.service import class_indices
from core.class_counts import set_ground_truth_counts
from core.errors import NotFound
from core.masks import encode_mask_png
from core.models import Annotation, Image, ImageStatus, Project, Split
from core.settings import Settings


@dataclass(frozen=True)
class Duplicate:
    filename: str
    sha256: str
    existing_image_id: int | None  # None: repeated within the same upload


@dataclass
class IngestResult:
    created: list[int] = field(default_factory=list)  # image ids, in upload order
    duplicates: list[Duplicate] = field(default_factory=list)


def ingest_images(
    session: Session,
    project: Project,
    sources: list[UploadSource],
    split: Split,
    settings: Settings,
) -> IngestResult:
    """Validates every file of an upload, then stores the new images, each with an empty
    annotation. Flushes; the caller commits.

    All-or-nothing: the first refusal raises UploadRefused before anything is added. Two
    passes over the files keep one image's bytes in memory at a time, and keep the database
    write (the second pass) short. Images whose SHA-256 is already in the project, or earlier
    in this upload, are reported, not stored.
    """
    decoded = decode_upload(sources, settings)
    if not decoded:
        raise UploadRefused(422, "No files in the upload.")
    rows = session.execute(
        select(Image.sha256, Image.id).where(
            Image.project_id == project.id,
            Image.sha256.in_({image.sha256 for image in decoded}),
        )
    )
    existing = {sha256: image_id for sha256, image_id in rows}
    result = IngestResult()
    to_store: set[int] = set()
    seen: set[str] = set()
    for index, image in enumerate(decoded):
        if image.sha256 in existing or image.sha256 in seen:
            result.duplicates.append(
                Duplicate(image.name, image.sha256, existing.get(image.sha256))
            )
        else:
            seen.add(image.sha256)
            to_store.add(index)
    for index, file in enumerate(iter_upload_files(sources, settings)):
        if index not in to_store:
            continue
        facts = decoded[index]
        row = Image(
            project_id=project.id,
            filename=facts.name,
            content_type=facts.content_type,
            width=facts.width,
            height=facts.height,
            sha256=facts.sha256,
            split=split,
            status=ImageStatus.processing,
            data=upright_bytes(file.data) if facts.reoriented else file.data,
            thumbnail_jpeg=facts.thumbnail_jpeg,
            preview_jpeg=facts.preview_jpeg,
        )
        session.add(row)
        session.flush()
        session.add(Annotation(image_id=row.id, version=0, labeled_pixels=0))
        session.flush()
        result.created.append(row.id)
        # The bytes are in the transaction now; drop them from the session's memory.
        session.expunge(row)
    return result


def get_image(session: Session, project_id: int, image_id: int, *load: ORMOption) -> Image:
    """The project's image, with ``load`` options (e.g. undefer a bytes column); 404 if absent."""
    image = session.scalar(
        select(Image).where(Image.id == image_id, Image.project_id == project_id).options(*load)
    )
    if image is None:
        raise NotFound(f"No image {image_id} in this project.")
    return image


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
    set_ground_truth_counts(session, image.id, mask)
    session.flush()
    return mask


def delete_ground_truth(session: Session, image: Image) -> None:
    image.ground_truth_png = None
    set_ground_truth_counts(session, image.id, None)
    session.flush()
