"""Annotator work: the next task, the partial mask (read and versioned save), its history."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Body, Header, HTTPException, Query, Response, status
from sqlalchemy import select, update
from sqlalchemy.orm import Session, undefer

from backend.annotations import service, upcoming
from backend.annotations.edits import EditRefused, MaskEdit
from backend.annotations.schemas import (
    MaskEditBody,
    SaveResult,
    SubmissionRead,
    Task,
    TaskLinks,
)
from backend.annotations.upcoming import UpcomingTask
from backend.deps import SessionDep, SettingsDep
from backend.images.previews import needs_preview
from backend.images.service import get_image
from backend.images.validation import UploadRefused
from backend.projects.deps import ProjectAccess, ProjectMember
from backend.review.schemas import ReviewNote
from backend.review.service import sent_back_note
from backend.validation_types import Id, IdValue, parse_version_etag
from core.mask_versions import SaveOutcome, StaleVersion
from core.masks import empty_mask, encode_mask_png
from core.models import Annotation, AnnotationSubmission, Image, QueryStatus, Round, User
from core.models import Query as QueryRow
from core.models.base import utc_now
from core.settings import Settings

router = APIRouter(prefix="/projects/{project_id}", tags=["annotations"])

log = logging.getLogger(__name__)

PNG = {"content": {"image/png": {}}, "description": "PNG bytes"}


def _parse_if_match(if_match: str | None) -> int:
    if if_match is None:
        raise HTTPException(
            status.HTTP_428_PRECONDITION_REQUIRED,
            "Send the mask version you edited as 'If-Match: \"<version>\"' (from GET .../mask "
            "or the task).",
        )
    version = parse_version_etag(if_match)
    if version is None:
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST, f"If-Match {if_match[:40]!r} is not a mask version."
        )
    return version


@router.get(
    "/images/{image_id}/mask",
    response_class=Response,
    responses={200: {**PNG, "headers": {"ETag": {"description": 'The version, e.g. "3"'}}}},
)
def read_mask(image_id: Id, access: ProjectMember, session: SessionDep) -> Response:
    """The current partial mask (PNG, pixel = class index, 255 = unlabeled); ETag = version."""
    image = get_image(session, access.project.id, image_id)
    annotation = session.scalar(
        select(Annotation)
        .where(Annotation.image_id == image.id)
        .options(undefer(Annotation.mask_png))
    )
    version = annotation.version if annotation else 0
    png = annotation.mask_png if annotation and annotation.mask_png else None
    if png is None:
        png = encode_mask_png(empty_mask(image.width, image.height))
    return Response(
        png,
        media_type="image/png",
        headers={"ETag": f'"{version}"', "Cache-Control": "no-store"},
    )


@router.put(
    "/images/{image_id}/mask",
    response_model=SaveResult,
    responses={
        409: {
            "description": "The image is not queried in an open round, or its task is "
            "reserved for another annotator"
        },
        412: {"description": "If-Match names a stale version; nothing was changed"},
        422: {"description": "Bad mask, or pixels changed outside the queried superpixels"},
        400: {"description": "If-Match is not a mask version"},
        428: {"description": "If-Match missing"},
    },
)
def save_mask(
    image_id: Id,
    mask: Annotated[
        bytes,
        Body(
            media_type="image/png",
            description="The whole partial mask: greyscale PNG of the image's size, "
            "pixel = class index, 255 = unlabeled.",
        ),
    ],
    access: ProjectMember,
    session: SessionDep,
    settings: SettingsDep,
    if_match: Annotated[str | None, Header()] = None,
    clicks: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    seconds: Annotated[float, Query(ge=0, le=86_400)] = 0.0,
    done: Annotated[bool, Query(description="Marks the image's query as labeled.")] = False,
) -> Response:
    """Saves the partial mask as the next version.

    ``curl -X PUT -H 'If-Match: "3"' -H 'Content-Type: image/png' --data-binary @mask.png
    "$URL/api/v1/projects/1/images/7/mask?clicks=12&seconds=40&done=true"``

    Only pixels inside the image's queried superpixels may differ from the stored mask.
    A stale If-Match gets 412 and nothing changes; an accepted save bumps the version and
    appends one history row in the same transaction.
    """
    expected = _parse_if_match(if_match)
    target = service.image_for_save(session, access.project.id, image_id)
    image = target.image
    queries = _open_queries_unless_reserved(image, target.queries, access)
    return _save(
        session,
        image,
        access.user,
        expected,
        lambda: service.save_mask(
            session,
            image,
            access.user,
            mask,
            expected_version=expected,
            clicks=clicks,
            seconds=seconds,
            done=done,
            settings=settings,
            queries=queries,
            annotation=target.annotation,
            class_indices=target.class_indices,
        ),
    )


@router.patch(
    "/images/{image_id}/mask",
    response_model=SaveResult,
    responses={
        409: {
            "description": "The image is not queried in an open round, the map is not, or "
            "its task is reserved for another annotator"
        },
        412: {"description": "If-Match names a stale version; nothing was changed"},
        422: {"description": "A class, superpixel or run breaks the rules; nothing was changed"},
        400: {"description": "If-Match is not a mask version"},
        428: {"description": "If-Match missing"},
    },
)
def edit_mask(
    image_id: Id,
    body: MaskEditBody,
    access: ProjectMember,
    session: SessionDep,
    settings: SettingsDep,
    if_match: Annotated[str | None, Header()] = None,
) -> Response:
    """Applies an edit to the mask version named in If-Match and saves the next version.

    ``curl -X PATCH -H 'If-Match: "3"' -H 'Content-Type: application/json' -d
    '{"superpixel_map_id": 7, "fills": [[4, 1]], "runs": [[48020, 6, 1]], "done": true}'
    "$URL/api/v1/projects/1/images/7/mask"``

    The browser's save: fills name whole queried superpixels of the task's map, runs the
    brushed pixels. The server checks both against the queries without decoding any image;
    a broken rule is a 422 naming it, a stale If-Match a 412, and either changes nothing.
    """
    expected = _parse_if_match(if_match)
    target = service.image_for_save(session, access.project.id, image_id)
    image = target.image
    queries = _open_queries_unless_reserved(image, target.queries, access)
    edit = MaskEdit.from_lists(body.fills, body.runs)
    return _save(
        session,
        image,
        access.user,
        expected,
        lambda: service.save_edit(
            session,
            image,
            access.user,
            edit,
            superpixel_map_id=body.superpixel_map_id,
            expected_version=expected,
            clicks=body.clicks,
            seconds=body.seconds,
            prefilled=body.prefilled,
            done=body.done,
            settings=settings,
            queries=queries,
            annotation=target.annotation,
            class_indices=target.class_indices,
        ),
    )


def _open_queries_unless_reserved(
    image: Image, queries: service.OpenQueries, access: ProjectAccess
) -> service.OpenQueries:
    """The image's open queries (read with the image, once for the check and the save); 409
    when the newest is leased to another annotator (leads may save)."""
    if access.is_lead or not queries.pairs:
        return queries  # with none open, the save itself answers that
    query, _round = queries.pairs[0]
    if (
        query.status != QueryStatus.done
        and query.assignee_id not in (None, access.user.id)
        and query.lease_expires_at is not None
        and query.lease_expires_at > utc_now()
    ):
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            f"Image {image.id} is reserved for another annotator until "
            f"{query.lease_expires_at.isoformat(timespec='seconds')}; ask for your next task "
            "instead.",
        )
    return queries


def _save(
    session: Session,
    image: Image,
    user: User,
    expected: int,
    save: Callable[[], SaveOutcome],
) -> Response:
    """Runs one save and commits it; a stale version is recorded and answered 412."""
    try:
        outcome = save()
        session.commit()
    except StaleVersion as error:
        session.rollback()
        current = error.current
        if current is None:
            current = service.current_version(session, image.id)
        service.record_conflict(session, image, user, expected=error.expected, current=current)
        session.commit()
        log.info(
            "stale save of image %s: version %s, now %s",
            image.id,
            error.expected,
            current,
            extra={"image_id": image.id, "expected": error.expected, "current": current},
        )
        raise HTTPException(
            status.HTTP_412_PRECONDITION_FAILED,
            f"The mask changed since version {error.expected} (now {current}); "
            "reload it and apply your edits again.",
            headers={"ETag": f'"{current}"'},
        ) from error
    except UploadRefused as error:
        session.rollback()
        raise HTTPException(error.status_code, error.message) from error
    except EditRefused as error:
        session.rollback()
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, error.message) from error
    result = SaveResult(
        image_id=image.id,
        version=outcome.version,
        changed_pixels=outcome.changed_pixels,
        changed_superpixels=outcome.changed_superpixels,
        labeled_pixels=outcome.labeled_pixels,
        query_done=outcome.query_done,
    )
    # A Response, not the model: FastAPI validates a sync endpoint's returned model again in
    # one more worker-thread hop, a few hundred microseconds of CPU per save under load.
    return Response(
        result.model_dump_json(),
        media_type="application/json",
        headers={"ETag": f'"{outcome.version}"'},
    )


@router.get("/images/{image_id}/submissions", response_model=list[SubmissionRead])
def list_submissions(
    image_id: Id, access: ProjectMember, session: SessionDep
) -> list[AnnotationSubmission]:
    """Every accepted save of this image's mask, oldest first."""
    image = get_image(session, access.project.id, image_id)
    return list(
        session.scalars(
            select(AnnotationSubmission)
            .where(AnnotationSubmission.image_id == image.id)
            .order_by(AnnotationSubmission.version)
        )
    )


def _links(project_id: int, image_id: int, map_id: int, query_id: int, preview: bool) -> TaskLinks:
    """A task's links (tasks/next's and tasks/upcoming's); ``preview``: a large image's."""
    base = f"/api/v1/projects/{project_id}"
    return TaskLinks(
        image=f"{base}/images/{image_id}/file",
        mask=f"{base}/images/{image_id}/mask",
        # The query's own map: the project's superpixel size may have changed since.
        superpixels=f"{base}/images/{image_id}/superpixels?map_id={map_id}",
        uncertainty=f"{base}/queries/{query_id}/uncertainty",
        preview=f"{base}/images/{image_id}/preview" if preview else None,
    )


def _task(
    project_id: int,
    claimed: service.ClaimedTask,
    review_note: ReviewNote | None,
    settings: Settings,
) -> Task:
    image_id, map_id = claimed.image_id, claimed.superpixel_map_id
    return Task(
        query_id=claimed.query_id,
        round_id=claimed.round_id,
        round_number=claimed.round_number,
        image_id=image_id,
        width=claimed.width,
        height=claimed.height,
        superpixel_map_id=map_id,
        superpixel_ids=claimed.superpixel_ids,
        superpixel_scores=claimed.superpixel_scores,
        predicted_classes=claimed.predicted_classes,
        mask_version=claimed.mask_version,
        lease_expires_at=claimed.lease_expires_at,
        review_note=review_note,
        links=_links(
            project_id,
            image_id,
            map_id,
            claimed.query_id,
            needs_preview(claimed.width, claimed.height, settings),
        ),
    )


@router.post(
    "/tasks/next",
    response_model=Task,
    tags=["tasks"],
    responses={204: {"description": "Nothing to label right now"}},
)
def next_task(
    access: ProjectMember,
    session: SessionDep,
    settings: SettingsDep,
    exclude: Annotated[
        list[IdValue],
        Query(max_length=500, description="Query ids to pass over (tasks the caller skipped)."),
    ] = [],  # noqa: B006 (FastAPI copies defaults per request)
) -> Response:
    """Hands the caller an image to label, reserved for them for the lease period.

    Asking again returns the same task while its lease runs; expired leases go back to
    the pool. ``?exclude=12&exclude=15`` passes over those queries (a skip).
    """
    query_id = service.claim_next_query(
        session, access.project.id, access.user, settings, exclude=exclude
    )
    if query_id is None:
        return Response(status_code=status.HTTP_204_NO_CONTENT)
    # Read in the claim's transaction: on PostgreSQL a read after the commit would cost
    # another BEGIN and ROLLBACK round trip.
    claimed = service.claimed_task(session, query_id)
    task = _task(access.project.id, claimed, sent_back_note(session, query_id), settings)
    session.commit()
    # A Response, not the model, as saves answer (see ``_save``): one thread hop less.
    return Response(task.model_dump_json(), media_type="application/json")


@router.get(
    "/tasks/upcoming",
    response_model=list[UpcomingTask],
    tags=["tasks"],
    responses={204: {"description": "Nothing would be handed out next"}},
)
def upcoming_tasks(
    access: ProjectMember,
    session: SessionDep,
    settings: SettingsDep,
    exclude: Annotated[
        list[IdValue],
        Query(max_length=500, description="Query ids to pass over (the caller's skips)."),
    ] = [],  # noqa: B006 (FastAPI copies defaults per request)
    limit: Annotated[int, Query(ge=1, le=upcoming.MAX_UPCOMING)] = 1,
) -> list[UpcomingTask] | Response:
    """The task(s) tasks/next would most likely hand the caller after the one they hold, in
    that order, for the browser to download ahead. Nothing is reserved or written: another
    annotator may take them first, and tasks/next decides.
    """
    found = upcoming.upcoming_queries(
        session, access.project.id, access.user.id, exclude=exclude, limit=limit
    )
    if not found:
        return Response(
            status_code=status.HTTP_204_NO_CONTENT, headers={"Cache-Control": "no-store"}
        )
    return [
        UpcomingTask(
            query_id=query.query_id,
            image_id=query.image_id,
            width=query.width,
            height=query.height,
            superpixel_map_id=query.superpixel_map_id,
            superpixel_ids=query.superpixel_ids,
            mask_version=query.mask_version,
            links=_links(
                access.project.id,
                query.image_id,
                query.superpixel_map_id,
                query.query_id,
                needs_preview(query.width, query.height, settings),
            ),
        )
        for query in found
    ]


def _get_query(session: SessionDep, project_id: int, query_id: int) -> QueryRow:
    query = session.scalar(
        select(QueryRow)
        .join(Round, Round.id == QueryRow.round_id)
        .where(QueryRow.id == query_id, Round.project_id == project_id)
    )
    if query is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"No query {query_id} in this project.")
    return query


@router.post(
    "/tasks/{query_id}/release",
    status_code=status.HTTP_204_NO_CONTENT,
    tags=["tasks"],
    responses={
        403: {"description": "The task is leased to someone else (an annotator asking)"},
        409: {"description": "The task was claimed anew or done meanwhile; nothing released"},
    },
)
def release_task(query_id: Id, access: ProjectMember, session: SessionDep) -> None:
    """Gives a task back before its lease ends (the assignee, or a lead)."""
    query = _get_query(session, access.project.id, query_id)
    holder = query.assignee_id
    if holder not in (None, access.user.id) and not access.is_lead:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "This task is leased to someone else.")
    if query.status == QueryStatus.done or holder is None:
        return
    # Only the lease that was read is released: if the task was claimed anew in between
    # (the lease ran out and someone else took it), nothing changes.
    released = session.execute(
        update(QueryRow)
        .where(
            QueryRow.id == query.id,
            QueryRow.assignee_id == holder,
            QueryRow.status != QueryStatus.done,
        )
        .values(status=QueryStatus.open, assignee_id=None, lease_expires_at=None)
        .execution_options(synchronize_session=False)
    )
    session.commit()
    if released.rowcount != 1:  # type: ignore[attr-defined]
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            f"Task {query_id} changed meanwhile (claimed by someone else or done); "
            "nothing was released.",
        )


@router.get(
    "/queries/{query_id}/uncertainty",
    response_class=Response,
    tags=["tasks"],
    responses={200: {**PNG, "description": "Uncertainty quantized to 0..255 (greyscale PNG)"}},
)
def read_uncertainty(query_id: Id, access: ProjectMember, session: SessionDep) -> Response:
    query = _get_query(session, access.project.id, query_id)
    png = session.scalar(select(QueryRow.uncertainty_png).where(QueryRow.id == query.id))
    if png is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"Query {query_id} has no uncertainty map.")
    return Response(png, media_type="image/png", headers={"Cache-Control": "private"})
