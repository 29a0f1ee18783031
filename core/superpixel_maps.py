"""Which superpixel map of an image is current, and storing one: shared by the API (serving
maps), the worker's ingest (computing them) and its scoring and query steps (using them).

An image keeps one map per (size, algorithm); the current one is that of the project's
present settings. Maps of earlier settings stay: past rounds' queries and scores name them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import ColumnElement, and_, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.interfaces import ORMOption

from core.models import Image, Project, SuperpixelMap
from core.superpixel_codec import encode_superpixels


def is_current_map(project: Project) -> ColumnElement[bool]:
    """SQL condition on ``SuperpixelMap``: made with the project's current size and algorithm."""
    return and_(
        SuperpixelMap.size == project.superpixel_size,
        SuperpixelMap.algorithm == project.superpixel_algorithm.value,
    )


def current_map(session: Session, image_id: int, project: Project) -> SuperpixelMap | None:
    """The image's current map, or None while it is not computed (yet)."""
    return session.scalar(
        select(SuperpixelMap).where(SuperpixelMap.image_id == image_id, is_current_map(project))
    )


def current_maps(
    session: Session, project: Project, image_ids: Sequence[int], *load: ORMOption
) -> dict[int, SuperpixelMap]:
    """image id -> its current map, for those of ``image_ids`` that have one (one query per
    500 ids); ``load``: options such as undeferring the labels."""
    found: dict[int, SuperpixelMap] = {}
    ids = list(image_ids)
    for start in range(0, len(ids), 500):
        rows = session.scalars(
            select(SuperpixelMap)
            .where(SuperpixelMap.image_id.in_(ids[start : start + 500]), is_current_map(project))
            .options(*load)
        )
        found.update({row.image_id: row for row in rows})
    return found


def store_superpixel_map(
    session: Session,
    image: Image,
    labels: NDArray[np.integer],
    *,
    size: int,
    algorithm: str,
) -> SuperpixelMap:
    """Stores (flushes) an image's (H, W) superpixel ids for ``size`` and ``algorithm``,
    replacing a map of the same parameters."""
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
