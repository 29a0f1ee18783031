"""Export memory: peak RSS and time of the streamed exports against the former in-memory ones.

Builds a temporary SQLite database (or a fresh PostgreSQL one with ``--postgres``) with two
projects of generated 480x360 partial masks (``--small`` and ``--images`` of them, default
100 and 1,000; 32 px cells of random classes with ~30 % left unlabeled, plus brush-like
strips), then exports each project in a fresh child process per (format, path):

- ``old``: the implementation before streaming (commit 965cbd2, kept below verbatim in
  spirit): COCO built as one dict and rendered by ``json.dumps`` as ``JSONResponse`` did; the
  zip written to a 64 MiB spooled file and read back.
- ``streamed``: ``backend.export.service.coco_export_chunks`` / ``export_zip_chunks``.

Each child resets its peak-RSS mark (``/proc/self/clear_refs``) after imports and a warm-up
query, consumes the export into a file, and reports time, RSS before and peak RSS. Flat
memory means the streamed peak does not grow from the small to the large project.

    .venv/bin/python bench/export_memory.py [--images 1000] [--small 100] [--postgres]
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import re
import subprocess
import sys
import tempfile
import time
import zipfile
from collections import defaultdict
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import IO, Any

import numpy as np
from PIL import Image as PILImage
from sqlalchemy import select
from sqlalchemy.orm import Session, undefer

WIDTH, HEIGHT, CELL = 480, 360, 32
CLASSES = [("sky", "#4682b4"), ("road", "#808080"), ("car", "#ff0000"), ("tree", "#228b22")]


def _rss_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise LookupError(field)


# ---- the former in-memory exports (backend/export/service.py at commit 965cbd2) ----------


def _old_provenance(session: Session, project_id: int) -> dict[int, list[dict[str, Any]]]:
    from core.models import AnnotationSubmission, Image, Round, User

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


def _old_labeled_images(session: Session, project_id: int) -> Iterator[tuple[Any, Any]]:
    from core.models import Annotation, Image

    rows = session.execute(
        select(Image, Annotation)
        .join(Annotation, Annotation.image_id == Image.id)
        .where(Image.project_id == project_id)
        .options(undefer(Annotation.mask_png))
        .order_by(Image.id)
        .execution_options(yield_per=100)
    )
    for image, annotation in rows:
        yield image, annotation
        session.expunge(image)
        session.expunge(annotation)


def _old_rle_counts(binary: np.ndarray) -> list[int]:
    flat = np.asarray(binary, dtype=np.uint8).ravel(order="F")
    if flat.size == 0:
        return []
    boundaries = np.flatnonzero(np.diff(flat)) + 1
    runs: list[int] = np.diff(np.concatenate(([0], boundaries, [flat.size]))).tolist()
    return [0, *runs] if flat[0] == 1 else runs


def _old_bbox(binary: np.ndarray) -> list[int]:
    rows = np.flatnonzero(binary.any(axis=1))
    cols = np.flatnonzero(binary.any(axis=0))
    return [int(cols[0]), int(rows[0]), int(cols[-1] - cols[0] + 1), int(rows[-1] - rows[0] + 1)]


def old_coco_chunks(session: Session, project: Any) -> Iterator[bytes]:
    from backend.projects.service import project_classes
    from core.masks import UNLABELED, decode_stored_mask
    from core.models.base import utc_now

    classes = project_classes(session, project.id)
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    for image, annotation in _old_labeled_images(session, project.id):
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
                        "counts": _old_rle_counts(binary),
                    },
                    "area": int(binary.sum()),
                    "bbox": _old_bbox(binary),
                    "iscrowd": 0,
                }
            )
    document = {
        "info": {
            "description": f"Tessera export of project {project.name!r}",
            "date_created": utc_now().isoformat(),
            "note": "category_id is the mask pixel value; pixels in no annotation are unlabeled.",
        },
        "images": images,
        "categories": [{"id": c.index, "name": c.name, "color": c.colour} for c in classes],
        "annotations": annotations,
    }
    # As JSONResponse rendered it: the whole body as one bytes object.
    yield json.dumps(
        document, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":")
    ).encode("utf-8")


def old_zip_chunks(session: Session, project: Any) -> Iterator[bytes]:
    import backend
    from backend.export.service import _classes_json, mask_entry_name
    from backend.projects.schemas import ProjectSettings
    from backend.projects.service import project_classes
    from core.masks import UNLABELED
    from core.models.base import utc_now

    handle: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=64 * 1024 * 1024)  # noqa: SIM115
    classes = project_classes(session, project.id)
    provenance = _old_provenance(session, project.id)
    images_manifest: list[dict[str, Any]] = []
    with zipfile.ZipFile(handle, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
        for image, annotation in _old_labeled_images(session, project.id):
            entry = mask_entry_name(image) if annotation.mask_png is not None else None
            if entry is not None and annotation.mask_png is not None:
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
            "format_version": 1,
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
    handle.seek(0)
    while chunk := handle.read(1024 * 1024):
        yield chunk
    handle.close()


# ---- data ---------------------------------------------------------------------------------


def partial_mask(rng: np.random.Generator) -> np.ndarray:
    """Filled 32 px cells of random classes, ~30 % unlabeled, and a few brush strips."""
    rows, cols = -(-HEIGHT // CELL), -(-WIDTH // CELL)
    cells = rng.integers(0, len(CLASSES), size=(rows, cols)).astype(np.uint8)
    cells[rng.random((rows, cols)) < 0.3] = 255
    mask = np.kron(cells, np.ones((CELL, CELL), np.uint8))[:HEIGHT, :WIDTH].copy()
    for _ in range(3):
        y, x = int(rng.integers(0, HEIGHT - 8)), int(rng.integers(0, WIDTH - 60))
        mask[y : y + 6, x : x + 60] = rng.integers(0, len(CLASSES))
    return mask


def build(database_url: str, counts: list[int]) -> list[int]:
    """Migrates the database and creates one project per count of labeled images."""
    from backend.auth.service import create_user
    from backend.projects.schemas import ClassCreate, ProjectCreate
    from backend.projects.service import create_project
    from core.db import make_engine, make_session_factory
    from core.masks import encode_mask_png
    from core.migrate import upgrade_database
    from core.models import Annotation, Image, ImageStatus, Split, User
    from core.passwords import hash_password
    from core.settings import Settings

    settings = Settings(database_url=database_url, secret_key="bench")
    upgrade_database(settings)
    engine = make_engine(settings.resolved_database_url)
    factory = make_session_factory(engine)
    rng = np.random.default_rng(3)
    buffer = io.BytesIO()
    PILImage.fromarray(rng.integers(0, 255, (HEIGHT, WIDTH, 3), np.uint8)).save(buffer, "JPEG")
    picture = buffer.getvalue()
    project_ids = []
    with factory() as session:
        lead = create_user(session, "lead@example.org", "x" * 12, password_hash=hash_password("x"))
        session.commit()
        lead_row = session.get(User, lead.id)
        assert lead_row is not None
        for count in counts:
            project = create_project(
                session,
                lead_row,
                ProjectCreate(
                    name=f"Export {count}",
                    classes=[ClassCreate(name=n, colour=c) for n, c in CLASSES],
                ),
            )
            for index in range(count):
                mask = partial_mask(rng)
                image = Image(
                    project_id=project.id,
                    filename=f"frame_{index:05d}.jpg",
                    content_type="image/jpeg",
                    width=WIDTH,
                    height=HEIGHT,
                    sha256=hashlib.sha256(f"{count}-{index}".encode()).hexdigest(),
                    split=Split.pool,
                    status=ImageStatus.ready,
                    data=picture,
                    thumbnail_jpeg=picture,
                )
                session.add(image)
                session.flush()
                session.add(
                    Annotation(
                        image_id=image.id,
                        version=1,
                        labeled_pixels=int((mask != 255).sum()),
                        mask_png=encode_mask_png(mask),
                    )
                )
                if index % 100 == 99:
                    session.commit()
                    session.expunge_all()
            session.commit()
            project_ids.append(project.id)
    engine.dispose()
    return project_ids


# ---- one measured export (child process) --------------------------------------------------


def child(database_url: str, project_id: int, export_format: str, path: str, out: Path) -> None:
    from backend.export import service
    from core.db import make_engine, make_session_factory
    from core.models import Project

    chunks = {
        ("coco", "old"): old_coco_chunks,
        ("coco", "streamed"): service.coco_export_chunks,
        ("zip", "old"): old_zip_chunks,
        ("zip", "streamed"): service.export_zip_chunks,
    }[(export_format, path)]
    engine = make_engine(database_url)
    factory = make_session_factory(engine)
    with factory() as session:
        project = session.get(Project, project_id)
        assert project is not None
        name = project.name
    Path("/proc/self/clear_refs").write_text("5")  # peak RSS := current RSS
    before = _rss_kib("VmRSS")
    started = time.perf_counter()
    written = 0
    with factory() as session, out.open("wb") as sink:
        project = session.get(Project, project_id)
        assert project is not None and project.name == name
        for chunk in chunks(session, project):
            written += len(chunk)
            sink.write(chunk)
    seconds = time.perf_counter() - started
    peak = _rss_kib("VmHWM")
    print(
        json.dumps({"seconds": seconds, "before_kib": before, "peak_kib": peak, "bytes": written})
    )


def measure(
    database_url: str, project_id: int, export_format: str, path: str, out: Path
) -> dict[str, Any]:
    completed = subprocess.run(
        [
            sys.executable,
            __file__,
            "--child",
            database_url,
            str(project_id),
            export_format,
            path,
            str(out),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    return result


def _without_dates(document: bytes) -> Any:
    parsed = json.loads(document)
    parsed["info"].pop("date_created")
    return parsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--small", type=int, default=100)
    parser.add_argument("--postgres", action="store_true", help="a fresh PostgreSQL database")
    args = parser.parse_args()
    with ExitStack() as stack:
        directory = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        if args.postgres:
            sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
            from tests.services import postgres_database

            database_url = stack.enter_context(postgres_database("tessera_bench"))
        else:
            database_url = f"sqlite:///{directory / 'export.db'}"
        started = time.perf_counter()
        small_id, large_id = build(database_url, [args.small, args.images])
        print(
            f"generated {args.small} + {args.images} masks of {WIDTH}x{HEIGHT} on "
            f"{re.sub(r'://.*', '', database_url)} in {time.perf_counter() - started:.1f} s\n"
        )
        print(
            "| format | images | path | time (s) | RSS before (MB) | peak RSS (MB) "
            "| peak - before (MB) | output (MB) |"
        )
        print("|---|---|---|---|---|---|---|---|")
        results: dict[tuple[str, int, str], dict[str, Any]] = {}
        for export_format in ("coco", "zip"):
            for count, project_id in ((args.small, small_id), (args.images, large_id)):
                for path in ("old", "streamed"):
                    out = directory / f"{export_format}-{count}-{path}"
                    result = measure(database_url, project_id, export_format, path, out)
                    results[(export_format, count, path)] = result
                    print(
                        f"| {export_format} | {count} | {path} | {result['seconds']:.2f} "
                        f"| {result['before_kib'] / 1024:.0f} | {result['peak_kib'] / 1024:.0f} "
                        f"| {(result['peak_kib'] - result['before_kib']) / 1024:.0f} "
                        f"| {result['bytes'] / 1e6:.1f} |",
                        flush=True,
                    )
        old = _without_dates((directory / f"coco-{args.images}-old").read_bytes())
        new = _without_dates((directory / f"coco-{args.images}-streamed").read_bytes())
        print(f"\nCOCO of {args.images} images, old and streamed documents equal: {old == new}")
        for export_format in ("coco", "zip"):
            old_run = results[(export_format, args.images, "old")]
            new_run = results[(export_format, args.images, "streamed")]
            growth = {
                key: (
                    results[(export_format, args.images, key)]["peak_kib"]
                    - results[(export_format, args.small, key)]["peak_kib"]
                )
                / 1024
                for key in ("old", "streamed")
            }
            print(
                f"{export_format}, {args.images} images: time streamed/old "
                f"{new_run['seconds'] / old_run['seconds']:.2f}; peak growth over the "
                f"{args.small}-image export: old {growth['old']:+.0f} MB, "
                f"streamed {growth['streamed']:+.0f} MB; peak streamed/old "
                f"{new_run['peak_kib'] / old_run['peak_kib']:.2f}"
            )


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5], Path(sys.argv[6]))
    else:
        main()
