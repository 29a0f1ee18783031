"""Saving partial masks without losing labels, and handing out work with leases.

A save checks the mask against the open queries, then stores it with the compare-and-set
write every save shares (``core.mask_versions``, the oracle's too): two writers holding the
same version race on one ``UPDATE ... WHERE version = :expected`` and exactly one wins.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import (
    ColumnElement,
    String,
    and_,
    bindparam,
    case,
    cast,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Session, undefer

from backend.annotations.edits import MaskEdit, apply_edit, check_edit
from backend.annotations.superpixel_runs import SuperpixelRunCache, SuperpixelRuns
from backend.images.validation import UploadRefused, decode_mask
from backend.memory import Bursts, ScratchBuffers
from core.class_counts import class_delta
from core.errors import Conflict, NotFound
from core.mask_versions import SaveOutcome, StaleVersion, store_mask_version
from core.masks import UNLABELED, decode_mask_rows, decode_stored_mask, encode_mask_png
from core.models import (
    Annotation,
    Image,
    LabelClass,
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


# The save path's reads, built once (see ``core.mask_versions``: building and keying a
# statement costs more CPU than running it).
# An open query, its round and its map's identity (``_queries_from_rows`` reads them).
_OPEN_QUERY_COLUMNS = (
    Query,
    Round,
    SuperpixelMap.image_id,
    SuperpixelMap.dtype,
    SuperpixelMap.count,
    SuperpixelMap.created_at,
)
_ACTIVE_QUERIES = (
    select(*_OPEN_QUERY_COLUMNS)
    .join(Round, Round.id == Query.round_id)
    .outerjoin(SuperpixelMap, SuperpixelMap.id == Query.superpixel_map_id)
    .where(Query.image_id == bindparam("image_id"), Round.status == RoundStatus.labeling)
    .order_by(Round.number.desc())
)
_ANNOTATION = (
    select(Annotation)
    .where(Annotation.image_id == bindparam("image_id"))
    .options(undefer(Annotation.mask_png))
)
# The project's class indices ride along with the image as one string ("0,1,2"): a save
# checks its values against them, and a separate statement would cost another round trip.
_CLASS_INDEX_LIST = (
    select(func.aggregate_strings(cast(LabelClass.index, String), ","))
    .where(LabelClass.project_id == Image.project_id)
    .scalar_subquery()
)
# A save's first read: the image, its annotation row, the class indices and the image's
# open queries (one row per query; one row with NULLs when none is open). One statement
# instead of two: on PostgreSQL each round trip costs the API process ~0.2 ms of CPU under
# load (bench/api_saves.py), more than the rows it carries.
_OPEN_QUERY = Query.__table__.join(
    Round.__table__, and_(Round.id == Query.round_id, Round.status == RoundStatus.labeling)
)
_SAVE_TARGET = (
    select(Image, Annotation, _CLASS_INDEX_LIST, *_OPEN_QUERY_COLUMNS)
    .outerjoin(Annotation, Annotation.image_id == Image.id)
    .outerjoin(_OPEN_QUERY, Query.image_id == Image.id)
    .outerjoin(SuperpixelMap, SuperpixelMap.id == Query.superpixel_map_id)
    .where(Image.id == bindparam("image_id"), Image.project_id == bindparam("project_id"))
    .order_by(Round.number.desc())
    .options(undefer(Annotation.mask_png))
)
_MAP_LABELS = select(SuperpixelMap.labels_zlib).where(SuperpixelMap.id == bindparam("map_id"))
_CLASS_INDICES = select(LabelClass.index).where(LabelClass.project_id == bindparam("project_id"))


@dataclass(frozen=True)
class MapIdentity:
    """What tells a stored superpixel map apart (maps never change once stored)."""

    image_id: int
    dtype: str
    count: int
    created_at: datetime


@dataclass(frozen=True)
class OpenQueries:
    """An image's queries in rounds collecting labels, newest round first, and the identity
    of each one's superpixel map (None: the map is gone)."""

    pairs: list[tuple[Query, Round]]
    maps: dict[int, MapIdentity | None]


def _queries_from_rows(rows: Iterable[Sequence[Any]]) -> OpenQueries:
    """OpenQueries from rows of ``_OPEN_QUERY_COLUMNS`` (a row whose query is NULL, from an
    outer join, stands for none)."""
    pairs: list[tuple[Query, Round]] = []
    maps: dict[int, MapIdentity | None] = {}
    for query, round_, map_image_id, dtype, count, created_at in rows:
        if query is None:
            continue
        pairs.append((query, round_))
        maps[query.superpixel_map_id] = (
            None if map_image_id is None else MapIdentity(map_image_id, dtype, count, created_at)
        )
    return OpenQueries(pairs, maps)


def active_queries(session: Session, image_id: int) -> OpenQueries:
    """Queries on this image in rounds that are collecting labels (one statement)."""
    return _queries_from_rows(session.execute(_ACTIVE_QUERIES, {"image_id": image_id}))


class SaveTarget(NamedTuple):
    """What a save of an image reads first: the image, its annotation row (mask bytes
    loaded; None before any save), its project's class indices and its open queries."""

    image: Image
    annotation: Annotation | None
    class_indices: set[int]
    queries: OpenQueries


def image_for_save(session: Session, project_id: int, image_id: int) -> SaveTarget:
    """The project's image, its annotation row, the project's class indices and the image's
    ``active_queries`` in one statement; 404 if the image is not in the project."""
    rows = session.execute(_SAVE_TARGET, {"image_id": image_id, "project_id": project_id}).all()
    if not rows:
        raise NotFound(f"No image {image_id} in this project.")
    image, annotation, classes = rows[0][0], rows[0][1], rows[0][2]
    indices = {int(index) for index in classes.split(",")} if classes else set()
    return SaveTarget(image, annotation, indices, _queries_from_rows(row[3:] for row in rows))


def _class_indices(session: Session, image: Image, known: set[int] | None) -> set[int]:
    if known is not None:
        return known
    return set(session.scalars(_CLASS_INDICES, {"project_id": image.project_id}))


_state_lock = threading.Lock()
_runs_cache: SuperpixelRunCache | None = None
_mask_slots: threading.BoundedSemaphore | None = None


def _cache(settings: Settings) -> SuperpixelRunCache:
    global _runs_cache
    with _state_lock:
        if _runs_cache is None:
            _runs_cache = SuperpixelRunCache(settings.superpixel_cache_mb * 1024 * 1024)
        return _runs_cache


# The decoded rows' buffers, reused from save to save (``ScratchBuffers``): at most this many
# bytes wait between saves (a few 2048x1024 masks).
SCRATCH_MAX_BYTES = 16 * 1024 * 1024
_scratch = ScratchBuffers(SCRATCH_MAX_BYTES)
# Once saves have paused this long, the scratch buffers go and the superpixel cache keeps
# only its most recent QUIET_CACHE_BYTES (runs of a dozen 2048x1024 maps): a burst of 50
# annotators fills it with ~50 maps that a pause's next saves rebuild in a few ms each.
SAVES_QUIET_S = 2.0
QUIET_CACHE_BYTES = 3 * 1024 * 1024


def _release_after_saves() -> None:
    _scratch.clear()
    with _state_lock:
        cache = _runs_cache
    if cache is not None:
        cache.shrink(QUIET_CACHE_BYTES)


_saves = Bursts(SAVES_QUIET_S, _release_after_saves)


@contextmanager
def mask_work(settings: Settings) -> Iterator[None]:
    """Caps the saves decoding, checking and encoding masks at once in this process (past a
    few, more threads only add memory on these CPUs, not throughput); once the burst of
    saves is over, the heap, the scratch buffers and most of the superpixel cache are handed
    back (``backend.memory.Bursts``)."""
    global _mask_slots
    with _state_lock:
        if _mask_slots is None:
            _mask_slots = threading.BoundedSemaphore(settings.mask_work_slots)
        slots = _mask_slots
    with _saves.working(), slots:
        yield


def superpixel_runs(
    session: Session,
    map_id: int,
    identity: MapIdentity | None,
    image: Image,
    settings: Settings,
    kept: NDArray[np.int64],
) -> SuperpixelRuns:
    """The runs of the ``kept`` (queried) superpixels of a stored map, from the process's
    bounded cache when there."""
    if identity is None or identity.image_id != image.id:
        raise Conflict("The query's superpixel map is gone.")
    dtype_name, count = identity.dtype, identity.count
    # Maps never change once stored; the database and creation time tell a reused id apart.
    database = session.get_bind().engine.url.render_as_string()
    key = (database, map_id, identity.image_id, identity.created_at, kept.tobytes())
    cache = _cache(settings)
    runs = cache.get(key)
    if runs is None:
        blob = session.scalar(_MAP_LABELS, {"map_id": map_id})
        assert blob is not None
        runs = SuperpixelRuns.from_zlib(blob, dtype_name, image.width, image.height, count, kept)
        cache.put(key, runs)
    return runs


def _annotation_at(
    session: Session, image: Image, expected_version: int, known: Annotation | None
) -> Annotation:
    annotation = known or session.scalar(_ANNOTATION, {"image_id": image.id})
    if annotation is None:
        raise NotFound(f"Image {image.id} has no annotation.")
    if annotation.version != expected_version:
        raise StaleVersion(expected_version, annotation.version)
    return annotation


def _open_queries(session: Session, image: Image, known: OpenQueries | None) -> OpenQueries:
    queries = active_queries(session, image.id) if known is None else known
    if not queries.pairs:
        raise Conflict(
            f"Image {image.id} is not queried in a round that is collecting labels.",
        )
    return queries


def _queried_by_map(queries: OpenQueries) -> dict[int, NDArray[np.int64]]:
    ids: dict[int, set[int]] = {}
    for query, _round in queries.pairs:
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
    queries: OpenQueries | None = None,
    annotation: Annotation | None = None,
    class_indices: set[int] | None = None,
) -> SaveOutcome:
    """Applies an edit (fills of queried superpixels, brushed runs inside them) to the
    stored mask at ``expected_version`` and stores the result as the next version.

    ``queries``, ``annotation``, ``class_indices``: the image's ``active_queries``, annotation
    row and project's class indices when the caller read them in this transaction. Raises
    StaleVersion (roll back: nothing changed), EditRefused (the edit breaks a rule), or
    Conflict when the image has no open query or the map is not one of its queries'.
    Flushes; the caller commits.
    """
    annotation = _annotation_at(session, image, expected_version, annotation)
    queries = _open_queries(session, image, queries)
    queried = _queried_by_map(queries)
    if superpixel_map_id not in queried:
        raise Conflict(
            f"Superpixel map {superpixel_map_id} is not the map of an open query of image "
            f"{image.id} (open: {sorted(queried)}); fetch the task again.",
        )
    editable = {
        m: superpixel_runs(session, m, queries.maps[m], image, settings, ids)
        for m, ids in queried.items()
    }
    with mask_work(settings):
        checked = check_edit(
            edit,
            editable[superpixel_map_id],
            editable,
            queried,
            superpixel_map_id,
            _class_indices(session, image, class_indices),
        )
        buffer = _scratch.take(image.height * (image.width + 1))
        rows = decode_mask_rows(annotation.mask_png, image.width, image.height, buffer)
        applied = apply_edit(rows, checked)
        png = rows.to_png()
        del rows, checked  # no view of the buffer is left
        _scratch.give(buffer)
    newest_query, newest_round = queries.pairs[0]
    return store_mask_version(
        session,
        annotation,
        image,
        user,
        png=png,
        expected_version=expected_version,
        labeled_pixels=annotation.labeled_pixels + applied.newly_labeled - applied.newly_unlabeled,
        counts_delta=applied.counts_delta,
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
    queries: OpenQueries | None = None,
    annotation: Annotation | None = None,
    class_indices: set[int] | None = None,
) -> SaveOutcome:
    """Validates a full partial mask for ``image`` and stores it as the next version.

    Raises StaleVersion (roll back: nothing changed), UploadRefused (bad mask, or pixels
    changed outside the queried superpixels), or Conflict when the image has no
    open query. Flushes; the caller commits the mask, its history row and the cost together.
    """
    annotation = _annotation_at(session, image, expected_version, annotation)
    queries = _open_queries(session, image, queries)
    queried = _queried_by_map(queries)
    runs_by_map = {
        m: superpixel_runs(session, m, queries.maps[m], image, settings, ids)
        for m, ids in queried.items()
    }
    indices = _class_indices(session, image, class_indices)
    newest_query, newest_round = queries.pairs[0]
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


def _claimable() -> list[ColumnElement[bool]]:
    """A query the caller (``:user_id``) may take at ``:now``: not done, and free, theirs, or
    its lease run out."""
    return [
        Query.status != QueryStatus.done,
        or_(
            Query.assignee_id.is_(None),
            Query.assignee_id == bindparam("user_id"),
            Query.lease_expires_at.is_(None),
            Query.lease_expires_at < bindparam("now", type_=Query.lease_expires_at.type),
        ),
    ]


# tasks/next's statements, built once (see ``_ACTIVE_QUERIES``); the look-ahead
# (backend/annotations/upcoming.py) narrows TASK_CANDIDATES, so both keep one order.
TASK_CANDIDATES = (
    select(Query.id)
    .join(Round, Round.id == Query.round_id)
    .where(Round.project_id == bindparam("project_id"), Round.status == RoundStatus.labeling)
    .where(*_claimable())
    .where(Query.id.not_in(bindparam("passed_over", expanding=True)))
    .order_by(
        # The caller's own lease first (NULL-safe: PostgreSQL sorts NULL first on DESC).
        case((Query.assignee_id == bindparam("user_id"), 0), else_=1),
        Round.number,
        Query.image_score.desc(),
        Query.id,
    )
    .limit(_CLAIM_ATTEMPTS)
)
_CLAIM = (
    update(Query)
    .where(Query.id == bindparam("query_id"), *_claimable())
    .values(
        assignee_id=bindparam("user_id"),
        lease_expires_at=bindparam("lease", type_=Query.lease_expires_at.type),
        status=QueryStatus.assigned,
    )
)
_CLAIMED = (
    select(
        Query.id,
        Query.round_id,
        Round.number,
        Query.image_id,
        Image.width,
        Image.height,
        Query.superpixel_map_id,
        Query.superpixel_ids,
        Query.superpixel_scores,
        Query.predicted_classes,
        Query.lease_expires_at,
        Annotation.version,
    )
    .join(Round, Round.id == Query.round_id)
    .join(Image, Image.id == Query.image_id)
    .outerjoin(Annotation, Annotation.image_id == Query.image_id)
    .where(Query.id == bindparam("query_id"))
)


@dataclass(frozen=True)
class ClaimedTask:
    """A query just leased to the caller, with what its task answer needs."""

    query_id: int
    round_id: int
    round_number: int
    image_id: int
    width: int
    height: int
    superpixel_map_id: int
    superpixel_ids: list[int]
    superpixel_scores: list[float]
    predicted_classes: list[int] | None
    lease_expires_at: datetime
    mask_version: int


def claim_next_query(
    session: Session,
    project_id: int,
    user: User,
    settings: Settings,
    exclude: Sequence[int] = (),
) -> int | None:
    """Leases the next open query to ``user`` (their own unexpired one first) and returns its
    id; flushes, the caller commits and reads it with ``claimed_task``.

    Queries in ``exclude`` (the ones the caller skipped) are passed over.

    Each claim is a conditional UPDATE, so two annotators asking at once never get the same
    query: the loser's UPDATE matches no row and it moves on to the next candidate.
    """
    now = utc_now()
    lease = now + timedelta(seconds=settings.task_lease_seconds)
    passed_over = set(exclude)
    connection = session.connection()
    # Many annotators asking at once read the same first candidates; one that loses every
    # race reads again past them, so nobody hears "nothing to label" while a query is open.
    while True:
        candidates = (
            connection.execute(
                TASK_CANDIDATES,
                {
                    "project_id": project_id,
                    "user_id": user.id,
                    "now": now,
                    "passed_over": sorted(passed_over),
                },
            )
            .scalars()
            .all()
        )
        if not candidates:
            return None
        for query_id in candidates:
            result = connection.execute(
                _CLAIM, {"query_id": query_id, "user_id": user.id, "now": now, "lease": lease}
            )
            if result.rowcount == 1:
                return int(query_id)
            # Someone else claimed it first; that UPDATE changed nothing, try the next one.
            passed_over.add(query_id)


def claimed_task(session: Session, query_id: int) -> ClaimedTask:
    """The task answer's fields of a query (one statement)."""
    row = session.connection().execute(_CLAIMED, {"query_id": query_id}).one()
    return ClaimedTask(
        query_id=row[0],
        round_id=row[1],
        round_number=row[2],
        image_id=row[3],
        width=row[4],
        height=row[5],
        superpixel_map_id=row[6],
        superpixel_ids=list(row[7]),
        superpixel_scores=list(row[8]),
        predicted_classes=None if row[9] is None else list(row[9]),
        lease_expires_at=row[10],
        mask_version=int(row[11] or 0),
    )
