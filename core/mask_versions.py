"""Storing the next version of an image's partial mask: the one write path of every save,
a person's (``backend.annotations.service``) and the oracle's (``worker.tasks.oracle``).

A save is a compare-and-set: ``UPDATE annotations ... WHERE version = :expected``. Two
writers holding the same version race on that one statement; the database lets exactly one
match and the other changes nothing. The history row, the query's state, the round's spend
and the class counts change in the same transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import bindparam, insert, update
from sqlalchemy.orm import Session

from core.class_counts import add_mask_delta
from core.models import Annotation, AnnotationSubmission, Image, Query, QueryStatus, Round, User
from core.models.base import utc_now
from core.settings import Settings


class StaleVersion(Exception):
    """The mask is no longer at ``expected``; ``current`` is known when it was read."""

    def __init__(self, expected: int, current: int | None = None) -> None:
        super().__init__(f"version {expected} is stale (now {current})")
        self.expected = expected
        self.current = current


@dataclass(frozen=True)
class SaveOutcome:
    version: int
    changed_pixels: int
    changed_superpixels: int
    labeled_pixels: int
    query_done: bool


# The statements of a save, built once: a save runs five of them, and building and keying
# a statement anew costs more CPU than executing it (``Connection.execute`` takes the
# compiled form from SQLAlchemy's cache by the statement's memoized key).
_NEXT_VERSION = (
    update(Annotation)
    .where(Annotation.id == bindparam("annotation_id"))
    .where(Annotation.version == bindparam("expected"))
    .values(
        version=Annotation.version + 1,
        mask_png=bindparam("png", type_=Annotation.mask_png.type),
        labeled_pixels=bindparam("labeled", type_=Annotation.labeled_pixels.type),
        updated_at=bindparam("now", type_=Annotation.updated_at.type),
        updated_by_id=bindparam("user_id", type_=Annotation.updated_by_id.type),
    )
)
_ADD_SUBMISSION = insert(AnnotationSubmission)
_CLOSE_QUERY = (
    update(Query)
    .where(Query.id == bindparam("query_id"), Query.status != QueryStatus.done)
    .values(
        status=QueryStatus.done,
        completed_at=bindparam("now", type_=Query.completed_at.type),
        lease_expires_at=None,
    )
)
_KEEP_LEASE = (
    update(Query)
    .where(Query.id == bindparam("query_id"), Query.assignee_id == bindparam("user_id"))
    .values(lease_expires_at=bindparam("lease", type_=Query.lease_expires_at.type))
)
_ROUND_SPEND = (
    update(Round)
    .where(Round.id == bindparam("round_id"))
    .values(
        spent_pixels=Round.spent_pixels + bindparam("pixels", type_=Round.spent_pixels.type),
        spent_seconds=Round.spent_seconds + bindparam("seconds", type_=Round.spent_seconds.type),
        spent_superpixels=Round.spent_superpixels
        + bindparam("superpixels", type_=Round.spent_superpixels.type),
    )
)


def store_mask_version(
    session: Session,
    annotation: Annotation,
    image: Image,
    user: User,
    *,
    png: bytes,
    expected_version: int,
    labeled_pixels: int,
    counts_delta: NDArray[np.int64],
    changed_pixels: int,
    touched: list[int],
    newly_labeled: int,
    query: Query,
    round_: Round,
    clicks: int,
    seconds: float,
    done: bool,
    settings: Settings,
    prefilled: bool = False,
) -> SaveOutcome:
    """The compare-and-set write of a checked mask (``png``, the next version after
    ``expected_version``), its history row, the query's state, the round's spend and the
    image's pixels per class (``counts_delta``: the save's change).

    The caller has checked the mask and counted its change; raises StaleVersion when another
    save won the race (roll back: nothing changed). Writes through the session's connection
    (Core statements: the ORM objects passed in are not refreshed); the caller commits.
    """
    now = utc_now()
    connection = session.connection()
    claimed = connection.execute(
        _NEXT_VERSION,
        {
            "annotation_id": annotation.id,
            "expected": expected_version,
            "png": png,
            "labeled": labeled_pixels,
            "now": now,
            "user_id": user.id,
        },
    )
    if claimed.rowcount != 1:
        # Another save won the race; the caller rolls back and reports the new version.
        raise StaleVersion(expected_version)
    add_mask_delta(session, image.id, counts_delta)
    new_version = expected_version + 1
    connection.execute(
        _ADD_SUBMISSION,
        {
            "annotation_id": annotation.id,
            "image_id": image.id,
            "user_id": user.id,
            "round_id": round_.id,
            "query_id": query.id,
            "version": new_version,
            "created_at": now,
            "changed_pixels": changed_pixels,
            "changed_superpixels": len(touched),
            "superpixel_ids": touched,
            "clicks": clicks,
            "seconds": seconds,
            "prefilled": prefilled,
        },
    )
    query_done = query.status == QueryStatus.done
    # The round pays for a query's superpixels once, when it is first marked done.
    superpixels_spent = 0
    if done and not query_done:
        closed = connection.execute(_CLOSE_QUERY, {"query_id": query.id, "now": now})
        if closed.rowcount == 1:
            superpixels_spent = len(query.superpixel_ids)
        query_done = True
    elif not query_done:
        # Saving keeps the saver's lease alive.
        connection.execute(
            _KEEP_LEASE,
            {
                "query_id": query.id,
                "user_id": user.id,
                "lease": now + timedelta(seconds=settings.task_lease_seconds),
            },
        )
    connection.execute(
        _ROUND_SPEND,
        {
            "round_id": round_.id,
            "pixels": newly_labeled,
            "seconds": seconds,
            "superpixels": superpixels_spent,
        },
    )
    return SaveOutcome(
        version=new_version,
        changed_pixels=changed_pixels,
        changed_superpixels=len(touched),
        labeled_pixels=labeled_pixels,
        query_done=query_done,
    )
