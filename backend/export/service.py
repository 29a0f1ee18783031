"""Project export: PNG masks + classes.json + provenance manifest (zip), and COCO RLE JSON.

Masks are exported as stored: pixel = class index, 255 = unlabeled.
"""

from __future__ import annotations

import json
import re
import zipfile
from collections import defaultdict
from collections.abc import Iterator
from typing import IO, Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import select
from sqlalchemy.orm import Session, undefer

import backend
from backend.masks import UNLABELED, decode_stored_mask
from backend.models import (
    Annotation,
    AnnotationSubmission,
    Image,
    LabelClass,
    Project,
    Round,
    User,
)
from backend.models.base import utc_now
from backend.projects.schemas import ProjectSettings
from backend.projects.service import project_classes

FORMAT_VERSION = 1
_BATCH = 100


def _safe_stem(filename: str) -> str:
    stem = filename.rsplit(".", 1)[0]
    return re.sub(r"[^A-Za-z0-9_-]+", "_", stem)[:80] or "image"


def mask_entry_name(image: Image) -> str:
    return f"masks/{image.id:06d}_{_safe_stem(image.filename)}.png"


def _classes_json(classes: list[LabelClass]) -> list[dict[str, Any]]:
    return [{"index": c.index, "name": c.name, "colour": c.colour} for c in classes]


def _provenance(session: Session, project_id: int) -> dict[int, list[dict[str, Any]]]:
    rows = session.execute(
        select(AnnotationSubmission, User.email, Round.number)
        .join(Image, Image.id == AnnotationSubmission.image_id)
        .outerjoin(User, User.id == AnnotationSubmission.user_id)
        .outerjoin(Round, Round.id == AnnotationSubmission.round_id)
        .where(Image.project_id == project_id)
        .order_by(AnnotationSubmission.image_id, AnnotationSubmission.version)
    )
    by_image: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for submission, email, round_number in rows:
        by_image[submission.image_id].append(
            {
                "version": submission.version,
                "user": email,
                "round": round_number,
                "superpixel_ids": submission.superpixel_ids,
                "changed_pixels": submission.changed_pixels,
                "clicks": submission.clicks,
                "seconds": submission.seconds,
                "at": submission.created_at.isoformat(),
            }
        )
    return by_image


def _labeled_images(session: Session, project_id: int) -> Iterator[tuple[Image, Annotation]]:
    """Images with their annotations, fetched in batches so big projects stream through."""
    rows = session.execute(
        select(Image, Annotation)
        .join(Annotation, Annotation.image_id == Image.id)
        .where(Image.project_id == project_id)
        .options(undefer(Annotation.mask_png))
        .order_by(Image.id)
        .execution_options(yield_per=_BATCH)
    )
    for image, annotation in rows:
        yield image, annotation
        session.expunge(image)
        session.expunge(annotation)


def write_export_zip(session: Session, project: Project, out: IO[bytes]) -> None:
    """Writes the project's masks, classes.json and manifest.json as a zip to ``out``."""
    classes = project_classes(session, project.id)
    provenance = _provenance(session, project.id)
    images_manifest: list[dict[str, Any]] = []
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
        for image, annotation in _labeled_images(session, project.id):
            entry = mask_entry_name(image) if annotation.mask_png is not None else None
            if entry is not None and annotation.mask_png is not None:
                # Stored masks are already PNG; storing them again avoids a second deflate.
                bundle.writestr(
                    zipfile.ZipInfo(entry, date_time=(1980, 1, 1, 0, 0, 0)),
                    annotation.mask_png,
                    compress_type=zipfile.ZIP_STORED,
                )
            images_manifest.append(
                {
                    "image_id": image.id,
                    "filename": image.filename,
                    "sha256": image.sha256,
                    "width": image.width,
                    "height": image.height,
                    "split": image.split.value,
                    "mask": entry,
                    "version": annotation.version,
                    "labeled_pixels": annotation.labeled_pixels,
                    "submissions": provenance.get(image.id, []),
                }
            )
        manifest = {
            "format": "tessera-export",
            "format_version": FORMAT_VERSION,
            "tessera_version": getattr(backend, "__version__", "0.1.0"),
            "exported_at": utc_now().isoformat(),
            "project": {
                "id": project.id,
                "name": project.name,
                "settings": ProjectSettings.model_validate(
                    project, from_attributes=True
                ).model_dump(mode="json"),
            },
            "unlabeled_value": UNLABELED,
            "images": images_manifest,
        }
        bundle.writestr("classes.json", json.dumps(_classes_json(classes), indent=2))
        bundle.writestr("manifest.json", json.dumps(manifest, indent=2))


def rle_counts(binary: NDArray[np.bool_]) -> list[int]:
    """COCO uncompressed RLE of a (H, W) boolean mask: column-major runs, zeros first."""
    flat = np.asarray(binary, dtype=np.uint8).ravel(order="F")
    if flat.size == 0:
        return []
    boundaries = np.flatnonzero(np.diff(flat)) + 1
    runs = np.diff(np.concatenate(([0], boundaries, [flat.size]))).tolist()
    return [0, *runs] if flat[0] == 1 else runs


def rle_decode(counts: list[int], height: int, width: int) -> NDArray[np.bool_]:
    values = np.zeros(height * width, dtype=bool)
    position, value = 0, False
    for run in counts:
        if value:
            values[position : position + run] = True
        position += run
        value = not value
    return values.reshape((height, width), order="F")


def _bbox(binary: NDArray[np.bool_]) -> list[int]:
    rows = np.flatnonzero(binary.any(axis=1))
    cols = np.flatnonzero(binary.any(axis=0))
    return [int(cols[0]), int(rows[0]), int(cols[-1] - cols[0] + 1), int(rows[-1] - rows[0] + 1)]


def coco_export(session: Session, project: Project) -> dict[str, Any]:
    """COCO-style JSON: one annotation per (image, class) with an uncompressed RLE."""
    classes = project_classes(session, project.id)
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    for image, annotation in _labeled_images(session, project.id):
        images.append(
            {
                "id": image.id,
                "file_name": image.filename,
                "width": image.width,
                "height": image.height,
                "sha256": image.sha256,
                "tessera_version": annotation.version,
            }
        )
        if annotation.mask_png is None:
            continue
        mask = decode_stored_mask(annotation.mask_png, image.width, image.height)
        for class_index in np.unique(mask).tolist():
            if class_index == UNLABELED:
                continue
            binary = mask == class_index
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image.id,
                    "category_id": int(class_index),
                    "segmentation": {
                        "size": [image.height, image.width],
                        "counts": rle_counts(binary),
                    },
                    "area": int(binary.sum()),
                    "bbox": _bbox(binary),
                    "iscrowd": 0,
                }
            )
    return {
        "info": {
            "description": f"Tessera export of project {project.name!r}",
            "date_created": utc_now().isoformat(),
            "note": "category_id is the mask pixel value; pixels in no annotation are unlabeled.",
        },
        "images": images,
        "categories": [{"id": c.index, "name": c.name, "color": c.colour} for c in classes],
        "annotations": annotations,
    }
