"""Project export, streamed: PNG masks + classes.json + provenance manifest (zip), and COCO
RLE JSON.

Masks are exported as stored: pixel = class index, 255 = unlabeled.

Both formats come out as an iterator of byte chunks, one batch of images at a time, so the
server's memory does not grow with the project. The zip is written by the standard library's
``zipfile`` into a sink that hands each finished entry to the response (an unseekable output
makes zipfile put sizes in data descriptors). The parts that list every image and come last
(the zip's manifest.json, COCO's annotations) are spooled to a temporary file (memory up to
``_SPOOL_BYTES``, then disk) and copied out at the end. The bytes are the same as the former
in-memory exports wrote (JSON layout included).
"""

from __future__ import annotations

import json
import re
import tempfile
import textwrap
import zipfile
from collections import defaultdict
from collections.abc import Iterator, Sequence
from typing import IO, Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import select
from sqlalchemy.orm import Session, undefer

import backend
from backend.projects.schemas import ProjectSettings
from backend.projects.service import project_classes
from core.masks import UNLABELED, decode_stored_mask
from core.models import (
    Annotation,
    AnnotationSubmission,
    Image,
    LabelClass,
    Project,
    Round,
    User,
)
from core.models.base import utc_now

FORMAT_VERSION = 1
_BATCH = 100
# A chunk goes to the response once this much output is ready.
_CHUNK_BYTES = 64 * 1024
_SPOOL_BYTES = 1024 * 1024
_COPY_BYTES = 1024 * 1024


def _safe_stem(filename: str) -> str:
    stem = filename.rsplit(".", 1)[0]
    return re.sub(r"[^A-Za-z0-9_-]+", "_", stem)[:80] or "image"


def mask_entry_name(image: Image) -> str:
    return f"masks/{image.id:06d}_{_safe_stem(image.filename)}.png"


def _classes_json(classes: list[LabelClass]) -> list[dict[str, Any]]:
    return [{"index": c.index, "name": c.name, "colour": c.colour} for c in classes]


def _provenance(session: Session, image_ids: Sequence[int]) -> dict[int, list[dict[str, Any]]]:
    """The submissions of ``image_ids``, oldest first, as the manifest lists them."""
    rows = session.execute(
        select(AnnotationSubmission, User.email, Round.number)
        .outerjoin(User, User.id == AnnotationSubmission.user_id)
        .outerjoin(Round, Round.id == AnnotationSubmission.round_id)
        .where(AnnotationSubmission.image_id.in_(image_ids))
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


def _labeled_batches(session: Session, project_id: int) -> Iterator[list[tuple[Image, Annotation]]]:
    """Images with their annotations (mask bytes loaded), ``_BATCH`` at a time, in id order;
    a batch leaves the session once the caller is done with it."""
    rows = session.execute(
        select(Image, Annotation)
        .join(Annotation, Annotation.image_id == Image.id)
        .where(Image.project_id == project_id)
        .options(undefer(Annotation.mask_png))
        .order_by(Image.id)
        .execution_options(yield_per=_BATCH)
    )
    for partition in rows.partitions():
        batch = [(image, annotation) for image, annotation in partition]
        yield batch
        for image, annotation in batch:
            session.expunge(image)
            session.expunge(annotation)


class _ChunkSink:
    """A write-only file for ``zipfile``: collects what is written until ``take``."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self.size = 0

    def write(self, data: bytes) -> int:
        self._parts.append(bytes(data))
        self.size += len(data)
        return len(data)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass

    def take(self) -> bytes:
        data = b"".join(self._parts)
        self._parts.clear()
        self.size = 0
        return data


def _copy(source: IO[bytes], target: IO[bytes]) -> None:
    source.seek(0)
    while chunk := source.read(_COPY_BYTES):
        target.write(chunk)


def _manifest_head(project: Project) -> str:
    """manifest.json up to its image list, laid out as ``json.dumps(manifest, indent=2)``."""
    head = {
        "format": "tessera-export",
        "format_version": FORMAT_VERSION,
        "tessera_version": getattr(backend, "__version__", "0.1.0"),
        "exported_at": utc_now().isoformat(),
        "project": {
            "id": project.id,
            "name": project.name,
            "settings": ProjectSettings.model_validate(project, from_attributes=True).model_dump(
                mode="json"
            ),
        },
        "unlabeled_value": UNLABELED,
    }
    return json.dumps(head, indent=2)[: -len("\n}")] + ',\n  "images": ['


def export_zip_chunks(session: Session, project: Project) -> Iterator[bytes]:
    """The project's masks, classes.json and manifest.json as a zip, in chunks."""
    classes = project_classes(session, project.id)
    head = _manifest_head(project)
    sink = _ChunkSink()
    with (
        tempfile.SpooledTemporaryFile(max_size=_SPOOL_BYTES) as images_json,
        zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED) as bundle,
    ):
        listed = 0
        for batch in _labeled_batches(session, project.id):
            provenance = _provenance(session, [image.id for image, _ in batch])
            for image, annotation in batch:
                entry = mask_entry_name(image) if annotation.mask_png is not None else None
                if entry is not None and annotation.mask_png is not None:
                    # Stored masks are already PNG; storing them again avoids a second deflate.
                    bundle.writestr(
                        zipfile.ZipInfo(entry, date_time=(1980, 1, 1, 0, 0, 0)),
                        annotation.mask_png,
                        compress_type=zipfile.ZIP_STORED,
                    )
                item = {
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
                separator = ",\n" if listed else "\n"
                images_json.write(
                    (separator + textwrap.indent(json.dumps(item, indent=2), "    ")).encode()
                )
                listed += 1
                if sink.size >= _CHUNK_BYTES:
                    yield sink.take()
        bundle.writestr("classes.json", json.dumps(_classes_json(classes), indent=2))
        with bundle.open("manifest.json", "w") as manifest:
            manifest.write(head.encode())
            _copy(images_json, manifest)
            manifest.write(b"\n  ]\n}" if listed else b"]\n}")
        yield sink.take()
    yield sink.take()  # the central directory, written when the zip closed


def _run_lengths(flat: NDArray[np.uint8]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Starts and lengths of the runs of equal values of a 1-D array."""
    starts = np.concatenate(([0], np.flatnonzero(flat[1:] != flat[:-1]) + 1)).astype(np.int64)
    lengths = np.diff(np.append(starts, flat.size))
    return starts, lengths


def _rle_from_runs(starts: NDArray[np.int64], lengths: NDArray[np.int64], size: int) -> list[int]:
    """COCO counts (zeros first) of the foreground runs ``starts``/``lengths`` of ``size``."""
    if starts.size == 0:
        return [size] if size else []
    ends = starts + lengths
    counts = np.empty(2 * starts.size, dtype=np.int64)
    counts[0::2] = starts - np.concatenate(([0], ends[:-1]))
    counts[1::2] = lengths
    tail = size - int(ends[-1])
    result: list[int] = counts.tolist()
    return [*result, tail] if tail else result


def rle_counts(binary: NDArray[np.bool_]) -> list[int]:
    """COCO uncompressed RLE of a (H, W) boolean mask: column-major runs, zeros first."""
    flat = np.asarray(binary, dtype=np.uint8).ravel(order="F")
    if flat.size == 0:
        return []
    starts, lengths = _run_lengths(flat)
    foreground = flat[starts] == 1
    return _rle_from_runs(starts[foreground], lengths[foreground], flat.size)


def rle_decode(counts: list[int], height: int, width: int) -> NDArray[np.bool_]:
    """The (H, W) boolean mask of COCO uncompressed RLE ``counts``."""
    values = np.repeat(np.arange(len(counts)) % 2 == 1, counts)
    if values.size != height * width:
        raise ValueError(f"RLE covers {values.size} pixels, not {height}x{width}")
    decoded: NDArray[np.bool_] = values.reshape((height, width), order="F")
    return decoded


def class_segments(mask: NDArray[np.uint8]) -> Iterator[dict[str, Any]]:
    """One COCO segmentation per labeled class of a (H, W) uint8 mask (255 = unlabeled):
    ``category_id``, ``segmentation`` (uncompressed RLE), ``area`` and ``bbox``.

    One column-major pass finds the runs of every class at once; each class's counts, area
    and box then come from its runs, not from another pass over the pixels.
    """
    if mask.ndim != 2:
        raise ValueError(f"mask must be (H, W), got shape {mask.shape}")
    height, width = mask.shape
    flat = mask.ravel(order="F")
    if flat.size == 0:
        return
    starts, lengths = _run_lengths(flat)
    values = flat[starts]
    for class_index in np.unique(values).tolist():
        if class_index == UNLABELED:
            continue
        picked = values == class_index
        class_starts, class_lengths = starts[picked], lengths[picked]
        lasts = class_starts + class_lengths - 1
        first_columns, last_columns = class_starts // height, lasts // height
        # A run that wraps into the next column covers every row between its two ends,
        # so its box spans the full height.
        wraps = last_columns > first_columns
        top = int(np.where(wraps, 0, class_starts % height).min())
        bottom = int(np.where(wraps, height - 1, lasts % height).max())
        left, right = int(first_columns.min()), int(last_columns.max())
        yield {
            "category_id": int(class_index),
            "segmentation": {
                "size": [height, width],
                "counts": _rle_from_runs(class_starts, class_lengths, flat.size),
            },
            "area": int(class_lengths.sum()),
            "bbox": [left, top, right - left + 1, bottom - top + 1],
        }


def _compact_json(value: Any) -> bytes:
    """JSON as the former ``JSONResponse`` wrote it."""
    return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()


def coco_export_chunks(session: Session, project: Project) -> Iterator[bytes]:
    """COCO-style JSON, in chunks: one annotation per (image, class) with an uncompressed RLE.

    Images go out as they are read; their annotations are spooled and follow the categories.
    """
    classes = project_classes(session, project.id)
    info = {
        "description": f"Tessera export of project {project.name!r}",
        "date_created": utc_now().isoformat(),
        "note": "category_id is the mask pixel value; pixels in no annotation are unlabeled.",
    }
    categories = [{"id": c.index, "name": c.name, "color": c.colour} for c in classes]
    yield b'{"info":' + _compact_json(info) + b',"images":['
    with tempfile.SpooledTemporaryFile(max_size=_SPOOL_BYTES) as annotations_json:
        listed = written = 0
        for batch in _labeled_batches(session, project.id):
            images_json = bytearray()
            for image, annotation in batch:
                if listed:
                    images_json += b","
                listed += 1
                images_json += _compact_json(
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
                for segment in class_segments(mask):
                    written += 1
                    item = {
                        "id": written,
                        "image_id": image.id,
                        "category_id": segment["category_id"],
                        "segmentation": segment["segmentation"],
                        "area": segment["area"],
                        "bbox": segment["bbox"],
                        "iscrowd": 0,
                    }
                    annotations_json.write((b"," if written > 1 else b"") + _compact_json(item))
            yield bytes(images_json)
        yield b'],"categories":' + _compact_json(categories) + b',"annotations":['
        annotations_json.seek(0)
        while chunk := annotations_json.read(_COPY_BYTES):
            yield chunk
    yield b"]}"
