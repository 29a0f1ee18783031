"""Where each image of a project stands (for the lead's browser) and review decisions.

An image's state comes from its newest query (or its query in the round filtered on), the
newest review of that query, whether the query is done and whether the mask changed since
the review (an accepted image saved again waits for review again); nothing is stored twice,
so a save or a review can never leave the browser out of date. Functions flush; the request
commits.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, and_, bindparam, case, func, select, update
from sqlalchemy.orm import Session

from backend.review.schemas import ImageState, Person, ReviewNote, ReviewRead
from core.errors import Conflict, NotFound
from core.models import (
    Annotation,
    AnnotationSubmission,
    Image,
    Query,
    QueryStatus,
    Review,
    ReviewDecision,
    Round,
    RoundStatus,
    Split,
    User,
)
from core.models.base import utc_now
from core.settings import Settings


@dataclass(frozen=True)
class ImageRow:
    image_id: int
    filename: str
    width: int
    height: int
    split: Split
    state: ImageState
    query_id: int | None
    round_id: int | None
    round_number: int | None
    annotator_id: int | None
    submitted_at: datetime | None


@dataclass(frozen=True)
class Filters:
    round_id: int | None = None
    state: ImageState | None = None
    annotator_id: int | None = None


def _state_query(project_id: int, round_id: int | None) -> tuple[Select[Any], Any, Any]:
    """The select of every image row with its state and annotator, and those two columns."""
    newest_query = select(Query.image_id, func.max(Query.id).label("query_id")).join(
        Round, Round.id == Query.round_id
    )
    newest_query = newest_query.where(Round.project_id == project_id)
    if round_id is not None:
        newest_query = newest_query.where(Round.id == round_id)
    picked = newest_query.group_by(Query.image_id).subquery("picked")
    newest_review = (
        select(Review.query_id, func.max(Review.id).label("review_id"))
        .where(Review.project_id == project_id)
        .group_by(Review.query_id)
        .subquery("newest_review")
    )
    newest_save = (
        select(AnnotationSubmission.query_id, func.max(AnnotationSubmission.id).label("save_id"))
        .where(AnnotationSubmission.query_id.in_(select(picked.c.query_id)))
        .group_by(AnnotationSubmission.query_id)
        .subquery("newest_save")
    )
    state = case(
        (Query.id.is_(None), ImageState.unlabeled.value),
        (
            and_(
                Query.status == QueryStatus.done,
                Review.decision == ReviewDecision.accepted,
                # Labels saved after the acceptance need another look.
                Review.mask_version >= func.coalesce(Annotation.version, 0),
            ),
            ImageState.accepted.value,
        ),
        (Query.status == QueryStatus.done, ImageState.submitted.value),
        (Review.decision == ReviewDecision.sent_back, ImageState.sent_back.value),
        else_=ImageState.asked.value,
    )
    annotator = func.coalesce(AnnotationSubmission.user_id, Query.assignee_id)
    rows = (
        select(
            Image.id,
            Image.filename,
            Image.width,
            Image.height,
            Image.split,
            state.label("state"),
            Query.id,
            Round.id,
            Round.number,
            annotator.label("annotator_id"),
            AnnotationSubmission.created_at,
        )
        .select_from(Image)
        .join(picked, picked.c.image_id == Image.id, isouter=round_id is None)
        .outerjoin(Query, Query.id == picked.c.query_id)
        .outerjoin(Round, Round.id == Query.round_id)
        .outerjoin(newest_review, newest_review.c.query_id == Query.id)
        .outerjoin(Review, Review.id == newest_review.c.review_id)
        .outerjoin(newest_save, newest_save.c.query_id == Query.id)
        .outerjoin(AnnotationSubmission, AnnotationSubmission.id == newest_save.c.save_id)
        .outerjoin(Annotation, Annotation.image_id == Image.id)
        .where(Image.project_id == project_id)
    )
    return rows, state, annotator


def _image_row(row: Any) -> ImageRow:
    return ImageRow(
        image_id=row[0],
        filename=row[1],
        width=row[2],
        height=row[3],
        split=row[4],
        state=ImageState(row[5]),
        query_id=row[6],
        round_id=row[7],
        round_number=row[8],
        annotator_id=row[9],
        submitted_at=row[10],
    )


def browse_images(
    session: Session, project_id: int, filters: Filters, *, offset: int, limit: int
) -> tuple[int, list[ImageRow]]:
    """One page of the project's images in id order, and how many match on all pages."""
    if filters.round_id is not None:
        round_ = session.get(Round, filters.round_id)
        if round_ is None or round_.project_id != project_id:
            raise NotFound(f"No round {filters.round_id} in this project.")
    rows, state, annotator = _state_query(project_id, filters.round_id)
    if filters.state is not None:
        rows = rows.where(state == filters.state.value)
    if filters.annotator_id is not None:
        rows = rows.where(annotator == filters.annotator_id)
    total = int(session.scalar(select(func.count()).select_from(rows.subquery())) or 0)
    page = session.execute(rows.order_by(Image.id).offset(offset).limit(limit))
    return total, [_image_row(row) for row in page]


def image_row(session: Session, project_id: int, image_id: int) -> ImageRow:
    rows, _state, _annotator = _state_query(project_id, None)
    row = session.execute(rows.where(Image.id == image_id)).one_or_none()
    if row is None:
        raise NotFound(f"No image {image_id} in this project.")
    return _image_row(row)


def people(session: Session, ids: Iterable[int | None]) -> dict[int, Person]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    users = session.scalars(select(User).where(User.id.in_(wanted)))
    return {u.id: Person(id=u.id, email=u.email, name=u.name) for u in users}


def history(session: Session, image_id: int) -> list[ReviewRead]:
    reviews = list(
        session.scalars(select(Review).where(Review.image_id == image_id).order_by(Review.id))
    )
    who = people(session, [r.reviewer_id for r in reviews] + [r.annotator_id for r in reviews])
    return [
        ReviewRead(
            id=r.id,
            decision=r.decision,
            comment=r.comment,
            reviewer=who.get(r.reviewer_id) if r.reviewer_id else None,
            annotator=who.get(r.annotator_id) if r.annotator_id else None,
            mask_version=r.mask_version,
            created_at=r.created_at,
        )
        for r in reviews
    ]


def mask_version(session: Session, image_id: int) -> int:
    version = session.scalar(select(Annotation.version).where(Annotation.image_id == image_id))
    return int(version or 0)


def decide(
    session: Session,
    project_id: int,
    image_id: int,
    reviewer: User,
    decision: ReviewDecision,
    comment: str,
    settings: Settings,
) -> Review:
    """Accepts a submitted image, or sends it back to its annotator with a comment.

    Conflict when the image is not in a state the decision applies to: only submitted
    images are accepted; submitted or accepted ones are sent back, while their round still
    collects labels (after that nobody could change them) and when someone saved them.
    Sending back reopens the query reserved for that annotator for
    ``TESSERA_SENT_BACK_HOLD_SECONDS``, first in their queue; the round stops counting its
    superpixels as spent until they are submitted again.
    """
    row = image_row(session, project_id, image_id)
    allowed = (
        {ImageState.submitted}
        if decision == ReviewDecision.accepted
        else {ImageState.submitted, ImageState.accepted}
    )
    if row.state not in allowed or row.query_id is None:
        verb = "accepted" if decision == ReviewDecision.accepted else "sent back"
        raise Conflict(
            f"Image {image_id} is {row.state.value.replace('_', ' ')}; only "
            f"{' or '.join(sorted(s.value for s in allowed))} images can be {verb}."
        )
    query = session.get(Query, row.query_id)
    assert query is not None
    now = utc_now()
    if decision == ReviewDecision.sent_back:
        round_ = session.get(Round, query.round_id)
        assert round_ is not None
        if round_.status != RoundStatus.labeling:
            raise Conflict(
                f"Round {round_.number} no longer collects labels ({round_.status.value}); "
                "its images cannot be sent back."
            )
        if row.annotator_id is None:
            raise Conflict(f"Nobody has saved labels on image {image_id}; nobody to send it to.")
        reopened = session.execute(
            update(Query)
            .where(Query.id == query.id, Query.status == QueryStatus.done)
            .values(
                status=QueryStatus.assigned,
                assignee_id=row.annotator_id,
                lease_expires_at=now + timedelta(seconds=settings.sent_back_hold_seconds),
                completed_at=None,
            )
            .execution_options(synchronize_session=False)
        )
        if reopened.rowcount != 1:  # type: ignore[attr-defined]
            raise Conflict(f"Image {image_id} changed meanwhile; reload it.")
        # Paid again when it is submitted again (annotations.service pays on done).
        asked = len(query.superpixel_ids)
        session.execute(
            update(Round)
            .where(Round.id == round_.id)
            .values(
                spent_superpixels=case(
                    (Round.spent_superpixels > asked, Round.spent_superpixels - asked), else_=0
                )
            )
            .execution_options(synchronize_session=False)
        )
    review = Review(
        project_id=project_id,
        image_id=image_id,
        query_id=query.id,
        reviewer_id=reviewer.id,
        annotator_id=row.annotator_id,
        decision=decision,
        comment=comment.strip(),
        mask_version=mask_version(session, image_id),
        created_at=now,
    )
    session.add(review)
    session.flush()
    return review


# Every tasks/next runs this: built once (building and keying a statement costs more CPU
# than running it).
_NEWEST_REVIEW = (
    select(Review, Query.status, User.name, User.email)
    .join(Query, Query.id == Review.query_id)
    .outerjoin(User, User.id == Review.reviewer_id)
    .where(Review.query_id == bindparam("query_id"))
    .order_by(Review.id.desc())
    .limit(1)
)


def sent_back_note(session: Session, query_id: int) -> ReviewNote | None:
    """The lead's comment when this query was sent back and not submitted again."""
    row = session.execute(_NEWEST_REVIEW, {"query_id": query_id}).one_or_none()
    if row is None:
        return None
    review, status, name, email = row
    if review.decision != ReviewDecision.sent_back or status == QueryStatus.done:
        return None
    return ReviewNote(
        comment=review.comment, reviewer=name or email or "a lead", created_at=review.created_at
    )
