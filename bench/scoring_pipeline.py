"""Pool scoring with the read-ahead on and off: images per second of the worker's scoring
path (``worker.tasks.score.PoolScorer``: batched database reads, PNG and map decoding,
MC-dropout scoring, score rows built and encoded) over the same pool, in one process.

The pool is generated (textured scenes, stored as PNG like uploads, grid superpixel maps)
in a fresh SQLite file, or in the PostgreSQL database given with --database-url (migrated
and filled: give it a new, throwaway database). Runs alternate off/on after
a warm-up; each mode's best run is printed with the ratio on/off and the seconds the model
spent waiting for its next batch (without the read-ahead: all the reading and decoding;
with it: what the overlap could not hide), and the rows of the two modes are compared (the
read-ahead must not change a score). On a CPU that the model already keeps busy the two
threads share the cores, so the ratio says little there; the waiting time says what the
overlap hides. Runs on CUDA when present
(pinned host memory, non-blocking copies).

Usage: .venv/bin/python bench/scoring_pipeline.py [--images 48] [--height 360 --width 480]
       [--samples 20] [--batch 8] [--repeats 2] [--device auto|cpu|cuda] [--threads N]
"""

from __future__ import annotations

import argparse
import io
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from numpy.typing import NDArray
from PIL import Image as PILImage
from sqlalchemy.orm import Session, sessionmaker

from core.db import make_engine, make_session_factory
from core.migrate import upgrade_database
from core.models import Annotation, Image, ImageStatus, LabelClass, Project, Round, RoundStatus
from core.settings import Settings
from core.superpixel_maps import store_superpixel_map
from worker.engine.model import ModelConfig, build_model
from worker.engine.scoring import max_pixel_score
from worker.simulation.synthetic import CLASSES, generate_scene
from worker.tasks.score import PoolScorer, ScoringOptions


def _png(array: NDArray[np.uint8]) -> bytes:
    buffer = io.BytesIO()
    PILImage.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def _grid(height: int, width: int, cell: int) -> NDArray[np.int32]:
    rows, cols = np.mgrid[0:height, 0:width]
    per_row = -(-width // cell)
    labels: NDArray[np.int32] = ((rows // cell) * per_row + cols // cell).astype(np.int32)
    return labels


def make_pool(
    factory: sessionmaker[Session], images: int, height: int, width: int
) -> tuple[int, int, list[int]]:
    """A project, a scoring round and ``images`` ready pool images; returns their ids."""
    rng = np.random.default_rng(0)
    with factory() as session:
        project = Project(name="bench", superpixel_size=16)
        session.add(project)
        session.flush()
        for index, spec in enumerate(CLASSES):
            session.add(
                LabelClass(project_id=project.id, index=index, name=spec["name"], colour="#000000")
            )
        round_ = Round(project_id=project.id, number=1, strategy="dynamic")
        round_.status = RoundStatus.scoring
        session.add(round_)
        ids = []
        for number in range(images):
            pixels, _ = generate_scene(height, width, rng)
            image = Image(
                project_id=project.id,
                filename=f"scene{number}.png",
                content_type="image/png",
                width=width,
                height=height,
                sha256=f"{number:064x}",
                status=ImageStatus.ready,
                data=_png(pixels),
                thumbnail_jpeg=b"",
            )
            session.add(image)
            session.flush()
            session.add(Annotation(image_id=image.id, version=0, labeled_pixels=0))
            store_superpixel_map(
                session, image, _grid(height, width, 16), size=16, algorithm="slic"
            )
            ids.append(image.id)
        session.commit()
        return project.id, round_.id, ids


def run(scorer: PoolScorer, ids: list[int]) -> tuple[float, float, list[tuple[object, ...]]]:
    """Seconds to score ``ids``, seconds of it the model waited for its next batch (all of
    the reading and decoding without the read-ahead), and the rows' contents."""
    if scorer.device.type == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    waited = 0.0
    rows = []
    batches = scorer.batches(ids)
    while True:
        asked = time.perf_counter()
        batch = next(batches, None)
        waited += time.perf_counter() - asked
        if batch is None:
            break
        rows.extend(scorer.score(batch))
    if scorer.device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    return seconds, waited, [(r.image_id, r.superpixel_scores, r.uncertainty_png) for r in rows]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=48)
    parser.add_argument("--height", type=int, default=360)
    parser.add_argument("--width", type=int, default=480)
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--model-width", type=int, default=16)
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.device == "auto":
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        device = torch.device(args.device)
    with tempfile.TemporaryDirectory() as directory:
        url = args.database_url or f"sqlite:///{Path(directory) / 'bench.db'}"
        upgrade_database(Settings(database_url=url, data_dir=Path(directory)))
        engine = make_engine(url)
        factory = make_session_factory(engine)
        started = time.perf_counter()
        project_id, round_id, ids = make_pool(factory, args.images, args.height, args.width)
        print(
            f"pool: {len(ids)} images {args.width}x{args.height} stored in "
            f"{time.perf_counter() - started:.1f} s ({engine.dialect.name}); device {device}, "
            f"U-Net width {args.model_width}, T = {args.samples}, batch {args.batch}, "
            f"{args.threads} torch threads"
        )
        torch.manual_seed(0)
        model = build_model(ModelConfig(num_classes=len(CLASSES), width=args.model_width))
        model = model.to(device)

        def scorer(prefetch: bool) -> PoolScorer:
            return PoolScorer(
                factory,
                project_id,
                round_id,
                model,
                device,
                "entropy",
                args.samples,
                max_pixel_score("entropy", len(CLASSES)),
                ScoringOptions(),
                None,
                args.batch,
                prefetch=prefetch,
            )

        run(scorer(True), ids[: args.batch])  # warm-up
        best: dict[bool, tuple[float, float]] = {}
        rows: dict[bool, list[tuple[object, ...]]] = {}
        for _ in range(args.repeats):
            for prefetch in (False, True):
                seconds, waited, rows[prefetch] = run(scorer(prefetch), ids)
                if prefetch not in best or seconds < best[prefetch][0]:
                    best[prefetch] = (seconds, waited)
                print(
                    f"  read-ahead {'on ' if prefetch else 'off'}: {seconds:.2f} s, "
                    f"{waited:.2f} s of it waiting for the next batch"
                )
        off, on = len(ids) / best[False][0], len(ids) / best[True][0]
        print(f"images/s  read-ahead off: {off:.2f}  on: {on:.2f}  ratio on/off: {on / off:.2f}")
        print(
            f"waiting for data: off {best[False][1]:.2f} s, on {best[True][1]:.2f} s "
            f"(of {best[False][0]:.2f} s and {best[True][0]:.2f} s)"
        )
        print(f"same scores on and off: {'yes' if rows[True] == rows[False] else 'NO'}")
        engine.dispose()


if __name__ == "__main__":
    main()
