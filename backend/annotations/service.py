"""Saving partial masks without losing labels, and handing out work with leases.

A save checks the mask against the open queries, then stores it with the compare-and-set
write every save shares (``core.mask_versions``, the oracle's too): two writers holding the
same version race on one ``UPDATE ... WHERE version = :expected`` and exactly one wins.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import case, or_, select, true, update
from sqlalchemy.orm import Session, undefer

from backend.annotations.edits import MaskEdit, apply_edit, check_edit
from backend.annotations.superpixel_runs import SuperpixelRunCache, SuperpixelRuns
from backend.images.validation import UploadRefused, decode_mask
from backend.memory import trim_heap
from backend.projects.service import class_indices
from core.class_counts import class_delta, edit_delta
from core.errors import Conflict, NotFound
from core.mask_versions import SaveOutcome, StaleVersion, store_mask_version
from core.masks import UNLABELED, decode_mask_rows, decode_stored_mask, encode_mask_png
from core.models import (
    Annotation,
    Image,
    Query,
    QueryStatus,
    Round,
    RoundStatus,
    SaveConflict,
    SuperpixelMap,
    User,
)
from core.models.base import utc_now
from core.settings import Settings

# How many candidate queries one "next task" call tries to claim before giving up.
_CLAIM_ATTEMPTS = 20


def current_version(session: Session, image_id: int) -> int:
    version = session.scalar(select(Annotation.version).where(Annotation.image_id == image_id))
    return int(version or 0)


def record_conflict(
    session: Session, image: Image, user: User, *, expected: int, current: int
) -> None:
    """Counts a refused save (412) for the team table; flushes, the caller commits."""
    session.add(
        SaveConflict(
            project_id=image.project_id,
            image_id=image.id,
            user_id=user.id,
            expected_version=expected,
            current_version=current,
        )
    )
    session.flush()


def active_queries(session: Session, image_id: int) -> list[tuple[Query, Round]]:
    """Queries on this image in rounds that are collecting labels."""
    rows = session.execute(
        select(Query, Round)
        .join(Round, Round.id == Query.round_id)
        .where(Query.image_id == image_id, Round.status == RoundStatus.labeling)
        .order_by(Round.number.desc())
    )
    return [(query, round_) for query, round_ in rows]


_state_lock = threading.Lock()
_runs_cache: SuperpixelRunCache | None = None
_mask_slots: threading.BoundedSemaphore | None = None


def _cache(settings: Settings) -> SuperpixelRunCache:
    global _runs_cache
    with _state_lock:
        if _runs_cache is None:
            _runs_cache = SuperpixelRunCache(settings.superpixel_cache_mb * 1024 * 1024)
        return _runs_cache


_mask_work_in_flight = 0


@contextmanager
def mask_work(settings: Settings) -> Iterator[None]:
    """Caps the saves decoding, checking and encoding masks at once in this process (past a
    few, more threads only add memory on these CPUs, not throughput); the last one out of a
    burst hands the freed heap back to the system."""
    global _mask_slots, _mask_work_in_flight
    with _state_lock:
        if _mask_slots is None:
            _mask_slots = threading.BoundedSemaphore(settings.mask_work_slots)
        slots = _mask_slots
    with slots:
        with _state_lock:
            _mask_work_in_flight += 1
        try:
            yield
        finally:
            with _state_lock:
                _mask_work_in_flight -= 1
                idle = _mask_work_in_flight == 0
    if idle:
        trim_heap()


def superpixel_runs(
    session: Session, map_id: int, image: Image, settings: Settings, kept: NDArray[np.int64]
) -> SuperpixelRuns:
    """The runs of the ``kept`` (queried) superpixels of a stored map, from the process's
    bounded cache when there."""
    row = session.execute(
        select(
            SuperpixelMap.image_id,
            SuperpixelMap.dtype,
            SuperpixelMap.count,
            SuperpixelMap.created_at,
        ).where(SuperpixelMap.id == map_id)
    ).one_or_none()
    if row is None or row[0] != image.id:
        raise Conflict("The query's superpixel map is gone.")
    map_image_id, dtype_name, count, created_at = row
    # Maps never change once stored; the database and creation time tell a reused id apart.
    database = session.get_bind().engine.url.render_as_string()
    key = (database, map_id, map_image_id, created_at, kept.tobytes())
    cache = _cache(settings)
    runs = cache.get(key)
    if runs is None:
        blob = session.scalar(select(SuperpixelMap.labels_zlib).where(SuperpixelMap.id == map_id))
        assert blob is not None
        runs = SuperpixelRuns.from_zlib(blob, dtype_name, image.width, image.height, count, kept)
        cache.put(key, runs)
    return runs


def _annotation_at(session: Session, image: Image, expected_version: int) -> Annotation:
    annotation = session.scalar(
        select(Annotation)
        .where(Annotation.image_id == image.id)
        .options(undefer(Annotation.mask_png))
    )
    if annotation is None:
        raise NotFound(f"Image {image.id} has no annotation.")
    if annotation.version != expected_version:
        raise StaleVersion(expected_version, annotation.version)
    return annotation


def _open_queries(session: Session, image: Image) -> list[tuple[Query, Round]]:
    queries = active_queries(session, image.id)
    if not queries:
        raise Conflict(
            f"Image {image.id} is not queried in a round that is collecting labels.",
        )
    return queries


def _queried_by_map(queries: list[tuple[Query, Round]]) -> dict[int, NDArray[np.int64]]:
    ids: dict[int, set[int]] = {}
    for query, _round in queries:
        ids.setdefault(query.superpixel_map_id, set()).update(query.superpixel_ids)
    return {m: np.array(sorted(s), dtype=np.int64) for m, s in ids.items()}


def save_edit(
    session: Session,
    image: Image,
    user: User,
    edit: MaskEdit,
    *,
    superpixel_map_id: int,
    expected_version: int,
    clicks: int,
    seconds: float,
    done: bool,
    settings: Settings,
    prefilled: bool = False,
) -> SaveOutcome:
    """Applies an edit (fills of queried superpixels, brushed runs inside them) to the
    stored mask at ``expected_version`` and stores the result as the next version.

    Raises StaleVersion (roll back: nothing changed), EditRefused (the edit breaks a rule),
    or Conflict when the image has no open query or the map is not one of its
    queries'. Flushes; the caller commits.
    """
    annotation = _annotation_at(session, image, expected_version)
    queries = _open_queries(session, image)
    queried = _queried_by_map(queries)
    if superpixel_map_id not in queried:
        raise Conflict(
            f"Superpixel map {superpixel_map_id} is not the map of an open query of image "
            f"{image.id} (open: {sorted(queried)}); fetch the task again.",
        )
    editable = {m: superpixel_runs(session, m, image, settings, ids) for m, ids in queried.items()}
    with mask_work(settings):
        checked = check_edit(
            edit,
            editable[superpixel_map_id],
            editable,
            queried,
            superpixel_map_id,
            class_indices(session, image.project_id),
        )
        rows = decode_mask_rows(annotation.mask_png, image.width, image.height)
        counts_delta = edit_delta(rows, checked.pixels, checked.values)
        applied = apply_edit(rows, checked)
        png = rows.to_png()
        del rows, checked
    newest_query, newest_round = queries[0]
    return store_mask_version(
        session,
        annotation,
        image,
        user,
        png=png,
        expected_version=expected_version,
        labeled_pixels=annotation.labeled_pixels + applied.newly_labeled - applied.newly_unlabeled,
        counts_delta=counts_delta,
        changed_pixels=applied.changed_pixels,
        touched=applied.touched_superpixels,
        newly_labeled=applied.newly_labeled,
        query=newest_query,
        round_=newest_round,
        clicks=clicks,
        seconds=seconds,
        done=done,
        settings=settings,
        prefilled=prefilled,
    )


def save_mask(
    session: Session,
    image: Image,
    user: User,
    mask_png: bytes,
    *,
    expected_version: int,
    clicks: int,
    seconds: float,
    done: bool,
    settings: Settings,
) -> SaveOutcome:
    """Validates a full partial mask for ``image`` and stores it as the next version.

    Raises StaleVersion (roll back: nothing changed), UploadRefused (bad mask, or pixels
    changed outside the queried superpixels), or Conflict when the image has no
    open query. Flushes; the caller commits the mask, its history row and the cost together.
    """
    annotation = _annotation_at(session, image, expected_version)
    queries = _open_queries(session, image)
    queried = _queried_by_map(queries)
    runs_by_map = {
        m: superpixel_runs(session, m, image, settings, ids) for m, ids in queried.items()
    }
    indices = class_indices(session, image.project_id)
    newest_query, newest_round = queries[0]
    with mask_work(settings):
        submitted = decode_mask(
            "mask",
            mask_png,
            width=image.width,
            height=image.height,
            class_indices=indices,
            settings=settings,
        ).reshape(-1)
        current = decode_stored_mask(annotation.mask_png, image.width, image.height).reshape(-1)
        changed = np.flatnonzero(submitted != current)
        editable = np.zeros(changed.size, dtype=bool)
        for map_id, runs in runs_by_map.items():
            editable |= np.isin(runs.labels_at(changed), queried[map_id])
        outside = int(np.count_nonzero(~editable))
        if outside:
            raise UploadRefused(
                422,
                f"{outside} pixels outside the queried superpixels differ from the stored "
                "mask; only queried superpixels may be labeled.",
            )
        labels = runs_by_map[newest_query.superpixel_map_id].labels_at(changed)
        touched = sorted(int(s) for s in np.unique(labels))
        newly_labeled = int(np.count_nonzero(current[changed] == UNLABELED))
        counts_delta = class_delta(current[changed], submitted[changed])
        labeled_pixels = int(np.count_nonzero(submitted != UNLABELED))
        png = encode_mask_png(submitted.reshape(image.height, image.width))
        del submitted, current
    return store_mask_version(
        session,
        annotation,
        image,
        user,
        png=png,
        expected_version=expected_version,
        labeled_pixels=labeled_pixels,
        counts_delta=counts_delta,
        changed_pixels=int(changed.size),
        touched=touched,
        newly_labeled=newly_labeled,
        query=newest_query,
        round_=newest_round,
        clicks=clicks,
        seconds=seconds,
        done=done,
        settings=settings,
    )


def _claimable(user_id: int, now: datetime) -> list[object]:
    return [
        Query.status != QueryStatus.done,
        or_(
            Query.assignee_id.is_(None),
            Query.assignee_id == user_id,
            Query.lease_expires_at.is_(None),
            Query.lease_expires_at < now,
        ),
    ]


def claim_next_query(
    session: Session,
    project_id: int,
    user: User,
    settings: Settings,
    exclude: Sequence[int] = (),
) -> tuple[Query, Round] | None:
    """Leases the next open query to ``user`` (their own unexpired one first); flushes, the
    caller commits.

    Queries in ``exclude`` (the ones the caller skipped) are passed over.

    Each claim is a conditional UPDATE, so two annotators asking at once never get the same
    query: the loser's UPDATE matches no row and it moves on to the next candidate.
    """
    now = utc_now()
    lease = now + timedelta(seconds=settings.task_lease_seconds)
    passed_over = set(exclude)
    # Many annotators asking at once read the same first candidates; one that loses every
    # race reads again past them, so nobody hears "nothing to label" while a query is open.
    while True:
        candidates = list(
            session.execute(
                select(Query.id, Round)
                .join(Round, Round.id == Query.round_id)
                .where(Round.project_id == project_id, Round.status == RoundStatus.labeling)
                .where(*_claimable(user.id, now))  # type: ignore[arg-type]
                .where(Query.id.not_in(list(passed_over)) if passed_over else true())
                .order_by(
                    # The caller's own lease first (NULL-safe: PostgreSQL sorts NULL first on
                    # DESC).
                    case((Query.assignee_id == user.id, 0), else_=1),
                    Round.number,
                    Query.image_score.desc(),
                    Query.id,
                )
                .limit(_CLAIM_ATTEMPTS)
            )
        )
        if not candidates:
            return None
        for query_id, round_ in candidates:
            result = session.execute(
                update(Query)
                .where(Query.id == query_id, *_claimable(user.id, now))  # type: ignore[arg-type]
                .values(assignee_id=user.id, lease_expires_at=lease, status=QueryStatus.assigned)
                .execution_options(synchronize_session=False)
            )
            if result.rowcount == 1:  # type: ignore[attr-defined]
                query = session.get(Query, query_id, populate_existing=True)
                assert query is not None
                return query, round_
            # Someone else claimed it first; that UPDATE changed nothing, try the next one.
            passed_over.add(query_id)
