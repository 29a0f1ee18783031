"""Pixels per class of every stored mask and ground truth, kept in ``class_pixel_counts``.

Saves add the change they make (known from the pixels they rewrite, no extra decoding), in
the same transaction as the new mask; ground truth is counted once, when it is stored. The
dashboard only sums rows. Functions flush; the caller commits.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import and_, bindparam, delete, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from core.masks import UNLABELED
from core.models import ClassPixelCount, CountSource, Image, Split

CLASS_VALUES = 256  # a mask pixel is a uint8: class 0..254 or 255 (unlabeled)


def pixels_per_class(values: NDArray[np.uint8]) -> NDArray[np.int64]:
    """values: any shape, uint8 -> (256,) pixels per value, 255 (unlabeled) set to 0."""
    if values.dtype != np.uint8:
        raise ValueError(f"mask values must be uint8, got {values.dtype}")
    bins = np.bincount(values.ravel(), minlength=CLASS_VALUES).astype(np.int64)
    bins[UNLABELED] = 0
    return bins


def class_delta(before: NDArray[np.uint8], after: NDArray[np.uint8]) -> NDArray[np.int64]:
    """How the per-class counts move when the pixels holding ``before`` come to hold ``after``.

    before, after: (P,) uint8 values of the same P distinct pixels -> (256,) signed change.
    Unchanged pixels cancel out, so the caller may pass every pixel it wrote.
    """
    if before.shape != after.shape:
        raise ValueError(f"before {before.shape} and after {after.shape} differ in shape")
    return pixels_per_class(after) - pixels_per_class(before)


def _upsert_counts(dialect: str) -> Any | None:
    """``INSERT ... ON CONFLICT (image, source, class) DO UPDATE SET pixels = pixels + new``
    for SQLite and PostgreSQL (built once per dialect), None for another database."""
    if dialect not in _UPSERTS:
        if dialect == "postgresql":
            statement: Any = postgresql_insert(ClassPixelCount)
        elif dialect == "sqlite":
            statement = sqlite_insert(ClassPixelCount)
        else:
            return None
        _UPSERTS[dialect] = statement.on_conflict_do_update(
            index_elements=[
                ClassPixelCount.image_id,
                ClassPixelCount.source,
                ClassPixelCount.class_index,
            ],
            set_={"pixels": ClassPixelCount.pixels + statement.excluded.pixels},
        )
    return _UPSERTS[dialect]


_UPSERTS: dict[str, Any] = {}


def add_mask_delta(session: Session, image_id: int, delta: NDArray[np.int64]) -> None:
    """Adds a save's per-class change to the image's mask counts.

    Call after the save's compare-and-set on the annotation row: that row stays locked until
    the transaction ends, so saves of one image update these rows one after another.
    """
    changed = {int(k): int(delta[k]) for k in np.flatnonzero(delta)}
    if not changed:
        return
    rows = [
        {"image_id": image_id, "source": CountSource.mask, "class_index": k, "pixels": d}
        for k, d in changed.items()
    ]
    upsert = _upsert_counts(session.get_bind().dialect.name)
    if upsert is not None:
        # One Core statement on the save's hot path instead of a SELECT, an UPDATE and an
        # INSERT through the ORM.
        session.connection().execute(upsert, rows)
        return
    existing = set(
        session.scalars(
            select(ClassPixelCount.class_index).where(
                ClassPixelCount.image_id == image_id,
                ClassPixelCount.source == CountSource.mask,
                ClassPixelCount.class_index.in_(list(changed)),
            )
        )
    )
    updates = [{"k": k, "d": d} for k, d in changed.items() if k in existing]
    if updates:
        # Core executemany: an ORM UPDATE with several parameter sets means "by primary key".
        session.connection().execute(
            update(ClassPixelCount)
            .where(
                and_(
                    ClassPixelCount.image_id == image_id,
                    ClassPixelCount.source == CountSource.mask,
                    ClassPixelCount.class_index == bindparam("k"),
                )
            )
            .values(pixels=ClassPixelCount.pixels + bindparam("d")),
            updates,
        )
    inserts = [row for row in rows if row["class_index"] not in existing]
    if inserts:
        session.execute(insert(ClassPixelCount), inserts)
    session.flush()


def set_ground_truth_counts(
    session: Session, image_id: int, truth: NDArray[np.uint8] | None
) -> None:
    """Replaces the image's ground-truth counts with those of ``truth`` ((H, W) uint8; None:
    the ground truth was deleted)."""
    session.execute(
        delete(ClassPixelCount)
        .where(
            ClassPixelCount.image_id == image_id,
            ClassPixelCount.source == CountSource.ground_truth,
        )
        .execution_options(synchronize_session=False)
    )
    if truth is not None:
        bins = pixels_per_class(truth)
        rows = [
            {
                "image_id": image_id,
                "source": CountSource.ground_truth,
                "class_index": int(k),
                "pixels": int(bins[k]),
            }
            for k in np.flatnonzero(bins)
        ]
        if rows:
            session.execute(insert(ClassPixelCount), rows)
    session.flush()


def project_class_pixels(
    session: Session, project_id: int, source: CountSource, split: Split | None = None
) -> NDArray[np.int64]:
    """(256,) pixels per class summed over the project's images (of ``split`` when given)."""
    conditions: list[Any] = [Image.project_id == project_id, ClassPixelCount.source == source]
    if split is not None:
        conditions.append(Image.split == split)
    totals = np.zeros(CLASS_VALUES, dtype=np.int64)
    for class_index, pixels in session.execute(
        select(ClassPixelCount.class_index, func.sum(ClassPixelCount.pixels))
        .join(Image, Image.id == ClassPixelCount.image_id)
        .where(*conditions)
        .group_by(ClassPixelCount.class_index)
    ):
        totals[int(class_index)] = int(pixels or 0)
    return totals
