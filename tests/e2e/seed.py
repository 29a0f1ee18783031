"""Stands in for the worker until [C] lands: puts a project's images into a labeling round.

It does what a worker round does at its end, through the backend's own service functions and
the engine's functions, on the server's database: superpixels computed and stored per image
(``store_superpixel_map``, image marked ready), one ``Round`` in status ``labeling``, and per
image a ``Query`` with the superpixels the dynamic rule picks from an uncertainty map (here a
stand-in: high near the true class boundaries, see ``scene.boundary_uncertainty``).

Replace ``seed_labeling_round`` by a real worker round (upload -> ingest -> round -> queries)
once the worker exists; the tests only need its return value.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from PIL import Image as PILImage
from sqlalchemy import select
from sqlalchemy.orm import Session, undefer

from core.db import make_engine, make_session_factory
from core.masks import encode_mask_png
from core.models import Image, ImageStatus, Project, Query, Round, RoundStatus
from core.superpixel_maps import store_superpixel_map
from tests.e2e.scene import boundary_uncertainty
from worker.engine.reductions import superpixel_scores
from worker.engine.strategies import dynamic_query
from worker.engine.superpixels import (
    compute_superpixels,
    superpixels_from_downscaled,
    work_shape,
)

# The worker's default TESSERA_WORK_MAX_PIXELS: larger images are segmented downscaled.
WORK_MAX_PIXELS = 4_000_000


@dataclass(frozen=True)
class QueriedImage:
    image_id: int
    query_id: int
    labels: NDArray[np.int32]  # (H, W) superpixel ids as stored
    queried: list[int]  # superpixel ids to label, sorted

    def pixels_of(self, superpixel: int) -> NDArray[np.bool_]:
        region: NDArray[np.bool_] = self.labels == superpixel
        return region


def _rgb(image: Image) -> NDArray[np.uint8]:
    with PILImage.open(io.BytesIO(image.data)) as decoded:
        return np.asarray(decoded.convert("RGB"), dtype=np.uint8)


def _superpixels(rgb: NDArray[np.uint8], size: int) -> NDArray[np.int32]:
    """As the worker's ingest computes them: on a copy downscaled to WORK_MAX_PIXELS."""
    height, width = rgb.shape[:2]
    if height * width <= WORK_MAX_PIXELS:
        return compute_superpixels(rgb, size=size)
    small_height, small_width = work_shape(height, width, WORK_MAX_PIXELS)
    small = PILImage.fromarray(rgb).resize((small_width, small_height), PILImage.Resampling.BOX)
    return superpixels_from_downscaled(np.asarray(small), height, width, size).astype(np.int32)


def seed_labeling_round(
    database_url: str,
    project_id: int,
    truths: dict[int, NDArray[np.uint8]],
    *,
    number: int = 1,
) -> list[QueriedImage]:
    """Queries every image in ``truths`` (image id -> true classes) in a new labeling round."""
    engine = make_engine(database_url)
    try:
        with make_session_factory(engine)() as session:
            queried = _seed(session, project_id, truths, number)
            session.commit()
            return queried
    finally:
        engine.dispose()


def _seed(
    session: Session, project_id: int, truths: dict[int, NDArray[np.uint8]], number: int
) -> list[QueriedImage]:
    project = session.get(Project, project_id)
    assert project is not None
    round_ = Round(
        project_id=project_id,
        number=number,
        strategy=project.strategy.value,
        status=RoundStatus.labeling,
    )
    session.add(round_)
    session.flush()
    out: list[QueriedImage] = []
    for image_id, truth in truths.items():
        image = session.scalar(
            select(Image).where(Image.id == image_id).options(undefer(Image.data))
        )
        assert image is not None and image.project_id == project_id
        labels = _superpixels(_rgb(image), project.superpixel_size)
        superpixel_map = store_superpixel_map(
            session,
            image,
            labels,
            size=project.superpixel_size,
            algorithm=project.superpixel_algorithm.value,
        )
        image.status = ImageStatus.ready
        uncertainty = boundary_uncertainty(truth)
        scores = superpixel_scores(uncertainty.astype(np.float64) / 255.0, labels)
        picked = [int(s) for s in dynamic_query(scores)]
        query = Query(
            round_id=round_.id,
            image_id=image.id,
            superpixel_map_id=superpixel_map.id,
            superpixel_ids=picked,
            superpixel_scores=[float(scores[s]) for s in picked],
            image_score=float(uncertainty.mean() / 255.0),
            uncertainty_png=encode_mask_png(uncertainty),
        )
        session.add(query)
        session.flush()
        out.append(QueriedImage(image.id, query.id, labels, sorted(picked)))
    return out
