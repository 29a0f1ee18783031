"""Oracle: answer a labeling round's open queries from ground truth through the same write as
people's saves (``core.mask_versions``: a compare-and-set version, one history row each, the
round's spend and the class counts), so a loop runs without annotators."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, undefer

from core.class_counts import class_delta
from core.mask_versions import StaleVersion, store_mask_version
from core.masks import UNLABELED, decode_stored_mask, encode_mask_png
from core.models import (
    Annotation,
    Image,
    Job,
    Query,
    QueryStatus,
    Round,
    RoundStatus,
    SuperpixelMap,
    User,
)
from core.models.base import utc_now
from core.passwords import hash_password
from core.settings import Settings
from worker.data import ground_truth, superpixel_labels
from worker.engine.oracle import ORACLE_MODES, oracle_label
from worker.jobs import JobLease

log = logging.getLogger(__name__)

ORACLE_EMAIL = "oracle@tessera.invalid"
_SAVE_ATTEMPTS = 3


def oracle_user(session: Session) -> User:
    """The account the oracle's saves are recorded under; it cannot sign in (inactive,
    random password)."""
    user = session.scalar(select(User).where(User.email == ORACLE_EMAIL))
    if user is not None:
        return user
    try:
        user = User(
            email=ORACLE_EMAIL,
            name="Oracle (ground truth)",
            password_hash=hash_password(secrets.token_urlsafe(32)),
            is_admin=False,
            is_active=False,
        )
        session.add(user)
        session.commit()
        return user
    except IntegrityError:
        session.rollback()
        found = session.scalar(select(User).where(User.email == ORACLE_EMAIL))
        assert found is not None
        return found


@dataclass
class OracleOutcome:
    answered: int = 0
    without_truth: int = 0
    leased_to_people: int = 0

    def message(self) -> str:
        return (
            f"oracle answered {self.answered} queries; skipped {self.without_truth} without "
            f"ground truth and {self.leased_to_people} leased to annotators"
        )


def _answer(session: Session, query: Query, user: User, mode: str, settings: Settings) -> bool:
    image = session.get(Image, query.image_id)
    superpixel_map = session.get(SuperpixelMap, query.superpixel_map_id)
    round_ = session.get(Round, query.round_id)
    if image is None or superpixel_map is None or round_ is None:
        return False
    truth = ground_truth(session, image)
    if truth is None:
        return False
    labels = superpixel_labels(session, superpixel_map, image).reshape(-1)
    asked = np.asarray(query.superpixel_ids, dtype=np.int64)
    for _ in range(_SAVE_ATTEMPTS):
        annotation = session.scalar(
            select(Annotation)
            .where(Annotation.image_id == image.id)
            .options(undefer(Annotation.mask_png))
        )
        if annotation is None:
            raise LookupError(f"image {image.id} has no annotation")
        current = decode_stored_mask(annotation.mask_png, image.width, image.height)
        answered = oracle_label(current, truth, labels.reshape(current.shape), asked, mode)
        before, after = current.reshape(-1), answered.reshape(-1)
        changed = np.flatnonzero(after != before)
        touched = np.unique(labels[changed])
        if not np.isin(touched, asked).all():
            raise RuntimeError(f"image {image.id}: the oracle changed pixels outside its query")
        try:
            store_mask_version(
                session,
                annotation,
                image,
                user,
                png=encode_mask_png(answered),
                expected_version=annotation.version,
                labeled_pixels=int(np.count_nonzero(after != UNLABELED)),
                counts_delta=class_delta(before[changed], after[changed]),
                changed_pixels=int(changed.size),
                touched=[int(s) for s in touched],
                newly_labeled=int(np.count_nonzero(before[changed] == UNLABELED)),
                query=query,
                round_=round_,
                clicks=len(asked),
                seconds=0.0,
                done=True,
                settings=settings,
            )
            session.commit()
            return True
        except StaleVersion:  # a person saved in between: answer on top of their mask
            session.rollback()
    raise RuntimeError(f"image {image.id}: the mask kept changing during {_SAVE_ATTEMPTS} saves")


def answer_round(
    session: Session,
    round_id: int,
    settings: Settings,
    mode: str = "exact",
    on_progress: Callable[[int, int], None] | None = None,
) -> OracleOutcome:
    """Answers every open query of a labeling round whose image has ground truth; queries
    leased to a person (unexpired) are left to them. Each save commits on its own."""
    if mode not in ORACLE_MODES:
        raise ValueError(f"unknown oracle mode {mode!r}; known: {ORACLE_MODES}")
    round_ = session.get(Round, round_id)
    if round_ is None or round_.status != RoundStatus.labeling:
        raise ValueError(f"round {round_id} is not collecting labels")
    user = oracle_user(session)
    outcome = OracleOutcome()
    queries = list(
        session.scalars(
            select(Query)
            .where(Query.round_id == round_id, Query.status != QueryStatus.done)
            .order_by(Query.id)
        )
    )
    for position, query in enumerate(queries):
        leased = (
            query.assignee_id not in (None, user.id)
            and query.lease_expires_at is not None
            and query.lease_expires_at > utc_now()
        )
        if leased:
            outcome.leased_to_people += 1
        elif _answer(session, query, user, mode, settings):
            outcome.answered += 1
        else:
            outcome.without_truth += 1
        if on_progress is not None:
            on_progress(position + 1, len(queries))
    return outcome


def oracle_job(lease: JobLease) -> None:
    """The body of an oracle job (see ``answer_round``)."""
    runtime = lease.runtime
    with runtime.session_factory() as session:
        job = session.get(Job, lease.job_id)
        if job is None or job.round_id is None:
            raise LookupError(f"oracle job {lease.job_id} has no round")
        mode = str((job.payload or {}).get("mode", "exact"))

        def progress(done: int, total: int) -> None:
            lease.check()
            lease.report(done / max(total, 1), f"oracle: {done}/{total} queries")

        outcome = answer_round(session, job.round_id, runtime.settings, mode, progress)
    lease.stop()
    with runtime.session_factory() as session:
        lease.finish(session, outcome.message())
        session.commit()
