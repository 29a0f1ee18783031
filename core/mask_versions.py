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
from sqlalchemy import update
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
    save won the race (roll back: nothing changed). Flushes; the caller commits.
    """
    newest_query, newest_round = query, round_
    now = utc_now()
    claimed = session.execute(
        update(Annotation)
        .where(Annotation.id == annotation.id, Annotation.version == expected_version)
        .values(
            version=Annotation.version + 1,
            mask_png=png,
            labeled_pixels=labeled_pixels,
            updated_at=now,
            updated_by_id=user.id,
        )
        .execution_options(synchronize_session=False)
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        # Another save won the race; the caller rolls back and reports the new version.
        raise StaleVersion(expected_version)
    add_mask_delta(session, image.id, counts_delta)
    new_version = expected_version + 1
    session.add(
        AnnotationSubmission(
            annotation_id=annotation.id,
            image_id=image.id,
            user_id=user.id,
            round_id=newest_round.id,
            query_id=newest_query.id,
            version=new_version,
            created_at=now,
            changed_pixels=changed_pixels,
            changed_superpixels=len(touched),
            superpixel_ids=touched,
            clicks=clicks,
            seconds=seconds,
            prefilled=prefilled,
        )
    )
    query_done = newest_query.status == QueryStatus.done
    # The round pays for a query's superpixels once, when it is first marked done.
    superpixels_spent = 0
    if done and not query_done:
        closed = session.execute(
            update(Query)
            .where(Query.id == newest_query.id, Query.status != QueryStatus.done)
            .values(status=QueryStatus.done, completed_at=now, lease_expires_at=None)
            .execution_options(synchronize_session=False)
        )
        if closed.rowcount == 1:  # type: ignore[attr-defined]
            superpixels_spent = len(newest_query.superpixel_ids)
        query_done = True
    elif not query_done:
        # Saving keeps the saver's lease alive.
        session.execute(
            update(Query)
            .where(Query.id == newest_query.id, Query.assignee_id == user.id)
            .values(lease_expires_at=now + timedelta(seconds=settings.task_lease_seconds))
            .execution_options(synchronize_session=False)
        )
    session.execute(
        update(Round)
        .where(Round.id == newest_round.id)
        .values(
            spent_pixels=Round.spent_pixels + newly_labeled,
            spent_seconds=Round.spent_seconds + seconds,
            spent_superpixels=Round.spent_superpixels + superpixels_spent,
        )
        .execution_options(synchronize_session=False)
    )
    session.flush()
    return SaveOutcome(
        version=new_version,
        changed_pixels=changed_pixels,
        changed_superpixels=len(touched),
        labeled_pixels=labeled_pixels,
        query_done=query_done,
    )
