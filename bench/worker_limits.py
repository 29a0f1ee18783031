"""Worker input limits: peak RSS and time of one image's superpixel ingest, full resolution
(the path before issue 13) against a downscaled copy (``TESSERA_WORK_MAX_PIXELS``).

Generates compressible PNGs (colour waves and a checkerboard, so SLIC finds edges; the
7000x7000 one is ~170 KB, like the 47.7 KB file of the report), stores them in a temporary
SQLite database, then runs the worker's own ``ensure_current_map`` once per (image, path)
in a fresh child process, which resets its peak-RSS mark after imports and reports time,
RSS before and peak RSS; the API's upload check of the same PNG is measured the same way.
The full-resolution path runs only up to ``--full-up-to`` pixels
(default 9 Mpx: it took 6.4 GB and 6 min at 49 Mpx, too much for a shared machine).

    .venv/bin/python bench/worker_limits.py [--sizes 1024x2048,3000x3000,5000x5000,7000x7000]
        [--work-max-pixels 4000000] [--full-up-to 9000000] [--stage superpixels|features]

``--stage features`` measures the frozen encoder's cached features the same way, at full
resolution against the copy downscaled to ``TESSERA_MODEL_MAX_PIXELS``.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image as PILImage

SUPERPIXEL_SIZE = 32


def _status_mib(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise LookupError(field)


def smooth_rgb(height: int, width: int) -> np.ndarray:
    rows = np.arange(height, dtype=np.float32)[:, None]
    cols = np.arange(width, dtype=np.float32)[None, :]
    pixels = np.empty((height, width, 3), np.uint8)
    pixels[..., 0] = (127 + 120 * np.sin(cols / 97.0)).astype(np.uint8)
    pixels[..., 1] = (127 + 120 * np.sin(rows / 61.0)).astype(np.uint8)
    pixels[..., 2] = (((rows // 300 + cols // 300) % 2) * 200).astype(np.uint8)
    return pixels


def build(database_url: str, sizes: list[tuple[int, int]]) -> tuple[int, list[int], list[int]]:
    """One project (U-Net, 32 px SLIC) with one stored PNG per size; returns the project id,
    the image ids and the PNG sizes in bytes."""
    from backend.auth.service import create_user
    from backend.projects.schemas import ClassCreate, ProjectCreate
    from backend.projects.service import create_project
    from core.db import make_engine, make_session_factory
    from core.migrate import upgrade_database
    from core.models import Annotation, Image, ImageStatus, ModelArchitecture, Split, User
    from core.passwords import hash_password
    from core.settings import Settings

    settings = Settings(database_url=database_url, secret_key="bench")
    upgrade_database(settings)
    engine = make_engine(database_url)
    factory = make_session_factory(engine)
    image_ids, png_bytes = [], []
    with factory() as session:
        lead = create_user(session, "lead@example.org", "x" * 12, password_hash=hash_password("x"))
        session.commit()
        lead_row = session.get(User, lead.id)
        assert lead_row is not None
        project = create_project(
            session,
            lead_row,
            ProjectCreate(
                name="Limits",
                classes=[ClassCreate(name="a", colour="#ff0000")],
                superpixel_size=SUPERPIXEL_SIZE,
                model_architecture=ModelArchitecture.unet,
            ),
        )
        for height, width in sizes:
            buffer = io.BytesIO()
            PILImage.fromarray(smooth_rgb(height, width)).save(buffer, format="PNG")
            data = buffer.getvalue()
            image = Image(
                project_id=project.id,
                filename=f"{width}x{height}.png",
                content_type="image/png",
                width=width,
                height=height,
                sha256=hashlib.sha256(data).hexdigest(),
                split=Split.pool,
                status=ImageStatus.processing,
                data=data,
                thumbnail_jpeg=b"",
            )
            session.add(image)
            session.flush()
            session.add(Annotation(image_id=image.id, version=0, labeled_pixels=0))
            session.commit()
            image_ids.append(image.id)
            png_bytes.append(len(data))
        project_id = project.id
    engine.dispose()
    return project_id, image_ids, png_bytes


def child(
    database_url: str, project_id: int, image_id: int, stage: str, max_pixels: int | None
) -> None:
    """Computes the image's superpixel map (stored, not committed) or, for stage
    "features", its EfficientNet-Lite0 encoder features (as the feature cache does, at most
    ``max_pixels``); prints the measurements."""
    import torch
    from sqlalchemy import delete

    from core.db import make_engine, make_session_factory
    from core.models import Image, ImageFeatures, Project
    from worker.engine.model import ModelConfig, build_model
    from worker.feature_cache import FeatureCache
    from worker.tasks.ingest import ensure_current_map

    torch.set_num_threads(1)
    factory = make_session_factory(make_engine(database_url))
    model = build_model(ModelConfig(num_classes=3, kind="efficientnet_lite0"))
    with factory() as session:
        project = session.get(Project, project_id)
        image = session.get(Image, image_id)
        assert project is not None and image is not None
        # A path measured before stored its features (the cache commits): computed again.
        session.execute(delete(ImageFeatures).where(ImageFeatures.image_id == image_id))
        session.commit()
        Path("/proc/self/clear_refs").write_text("5")  # peak RSS := current RSS
        before = _status_mib("VmRSS")
        started = time.perf_counter()
        if stage == "features":
            cache = FeatureCache(model, torch.device("cpu"), 1, max_pixels)
            [encoded] = cache.features(session, [image])
            count = f"{encoded.nbytes / 2**20:.0f} MB fp16"
        else:
            count = str(ensure_current_map(session, image, project, max_pixels).count)
        seconds = time.perf_counter() - started
        peak = _status_mib("VmHWM")
        session.rollback()
    print(json.dumps({"seconds": seconds, "before": before, "peak": peak, "count": count}))


def validation_child(database_url: str, image_id: int) -> None:
    """The API's upload check of the stored PNG (``decode_upload``: header caps, a full
    decode, the thumbnail), measured like ``child``."""
    from sqlalchemy import select

    from backend.images.validation import UploadSource, decode_upload
    from core.db import make_engine, make_session_factory
    from core.models import Image
    from core.settings import Settings

    factory = make_session_factory(make_engine(database_url))
    with factory() as session:
        data = session.scalar(select(Image.data).where(Image.id == image_id))
    assert data is not None
    Path("/proc/self/clear_refs").write_text("5")
    before = _status_mib("VmRSS")
    started = time.perf_counter()
    [_decoded] = decode_upload([UploadSource("upload.png", io.BytesIO(data))], Settings())
    seconds = time.perf_counter() - started
    peak = _status_mib("VmHWM")
    print(json.dumps({"seconds": seconds, "before": before, "peak": peak, "count": "-"}))


def measure(
    database_url: str, project_id: int, image_id: int, stage: str, max_pixels: int | None
) -> Any:
    done = subprocess.run(
        [sys.executable, __file__, "--child", database_url, str(project_id), str(image_id), stage]
        + ([str(max_pixels)] if max_pixels is not None else []),
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1024x2048,3000x3000,5000x5000,7000x7000")
    parser.add_argument("--work-max-pixels", type=int, default=4_000_000)
    parser.add_argument("--full-up-to", type=int, default=9_000_000)
    parser.add_argument(
        "--stage",
        choices=["superpixels", "features"],
        default="superpixels",
        help="features: the frozen encoder's cached features, TESSERA_MODEL_MAX_PIXELS "
        "(--work-max-pixels then means that limit, e.g. 2097152)",
    )
    args = parser.parse_args()
    sizes = [(int(h), int(w)) for h, w in (part.split("x") for part in args.sizes.split(","))]
    with tempfile.TemporaryDirectory() as directory:
        database_url = f"sqlite:///{Path(directory) / 'limits.db'}"
        project_id, image_ids, png_bytes = build(database_url, sizes)
        what = (
            "EfficientNet-Lite0 features, one thread; TESSERA_MODEL_MAX_PIXELS"
            if args.stage == "features"
            else f"SLIC, superpixel size {SUPERPIXEL_SIZE}; TESSERA_WORK_MAX_PIXELS"
        )
        print(f"{what} = {args.work_max_pixels}\n")
        print(
            "| image (HxW) | PNG (KB) | path | time (s) | RSS before (MB) | peak RSS (MB) "
            "| peak - before (MB) | superpixels |"
        )
        print("|---|---|---|---|---|---|---|---|")
        for (height, width), image_id, size in zip(sizes, image_ids, png_bytes, strict=True):
            runs = {}
            paths: list[tuple[str, int | None]] = [("downscaled", args.work_max_pixels)]
            if height * width <= args.full_up_to:
                paths.insert(0, ("full resolution", None))
            validation = subprocess.run(
                [sys.executable, __file__, "--validate", database_url, str(image_id)],
                check=True,
                capture_output=True,
                text=True,
            )
            result = json.loads(validation.stdout.strip().splitlines()[-1])
            print(
                f"| {height}x{width} | {size / 1024:.0f} | API upload check | "
                f"{result['seconds']:.1f} | {result['before']:.0f} | {result['peak']:.0f} "
                f"| {result['peak'] - result['before']:.0f} | - |",
                flush=True,
            )
            for name, max_pixels in paths:
                result = measure(database_url, project_id, image_id, args.stage, max_pixels)
                runs[name] = result
                print(
                    f"| {height}x{width} | {size / 1024:.0f} | {name} | {result['seconds']:.1f} "
                    f"| {result['before']:.0f} | {result['peak']:.0f} "
                    f"| {result['peak'] - result['before']:.0f} | {result['count']} |",
                    flush=True,
                )
            if len(runs) == 2 and height * width > args.work_max_pixels:
                old, new = runs["full resolution"], runs["downscaled"]
                print(
                    f"| {height}x{width} | | downscaled / full | "
                    f"{new['seconds'] / old['seconds']:.2f} | | "
                    f"{new['peak'] / old['peak']:.2f} | "
                    f"{(new['peak'] - new['before']) / (old['peak'] - old['before']):.2f} | |"
                )


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--validate":
        validation_child(sys.argv[2], int(sys.argv[3]))
    elif len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(
            sys.argv[2],
            int(sys.argv[3]),
            int(sys.argv[4]),
            sys.argv[5],
            int(sys.argv[6]) if len(sys.argv) > 6 else None,
        )
    else:
        main()
