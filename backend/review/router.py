"""The lead's image browser and review mode: filter the project's images by round, state and
annotator; open one; accept it or send it back to its annotator with a comment."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, status

from backend.deps import SessionDep, SettingsDep
from backend.projects.deps import ProjectLead
from backend.review import service
from backend.review.schemas import (
    BrowserImage,
    BrowserLinks,
    ImagePage,
    ImageState,
    Person,
    ReviewCreate,
    ReviewDetail,
    ReviewRead,
)
from backend.validation_types import Id, IdValue
from core.models import Query as QueryRow

router = APIRouter(prefix="/projects/{project_id}/review", tags=["review"])

_CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"description": "The image is not in a state the decision applies to (the message says)"}
}


def _browser_image(project_id: int, row: service.ImageRow, who: dict[int, Person]) -> BrowserImage:
    base = f"/api/v1/projects/{project_id}/images/{row.image_id}"
    return BrowserImage(
        image_id=row.image_id,
        filename=row.filename,
        width=row.width,
        height=row.height,
        split=row.split,
        state=row.state,
        round_id=row.round_id,
        round_number=row.round_number,
        query_id=row.query_id,
        annotator=who.get(row.annotator_id) if row.annotator_id is not None else None,
        submitted_at=row.submitted_at,
        links=BrowserLinks(
            thumbnail=f"{base}/thumbnail", image=f"{base}/file", mask=f"{base}/mask"
        ),
    )


@router.get("/images", response_model=ImagePage)
def browse_images(
    access: ProjectLead,
    session: SessionDep,
    round_id: Annotated[
        IdValue | None, Query(description="Only images asked in this round.")
    ] = None,
    state: Annotated[ImageState | None, Query(description="Only images in this state.")] = None,
    annotator_id: Annotated[
        IdValue | None, Query(description="Only images this user labeled (or holds).")
    ] = None,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> ImagePage:
    """The project's images in id order with where each stands, one page at a time.

    ``GET .../review/images?state=submitted&round_id=3&limit=20``: the submitted images of
    round 3 waiting for review. A round filter uses that round's query of each image;
    otherwise an image's newest query decides its state.
    """
    total, rows = service.browse_images(
        session,
        access.project.id,
        service.Filters(round_id=round_id, state=state, annotator_id=annotator_id),
        offset=offset,
        limit=limit,
    )
    who = service.people(session, [row.annotator_id for row in rows])
    return ImagePage(
        total=total,
        offset=offset,
        limit=limit,
        items=[
            BrowserImage.model_validate(_browser_image(access.project.id, row, who)) for row in rows
        ],
    )


def _detail(session: SessionDep, project_id: int, image_id: int) -> ReviewDetail:
    row = service.image_row(session, project_id, image_id)
    who = service.people(session, [row.annotator_id])
    query = session.get(QueryRow, row.query_id) if row.query_id is not None else None
    base = f"/api/v1/projects/{project_id}/images/{image_id}"
    return ReviewDetail(
        **_browser_image(project_id, row, who).model_dump(),
        superpixel_map_id=query.superpixel_map_id if query else None,
        superpixel_ids=list(query.superpixel_ids) if query else [],
        mask_version=service.mask_version(session, image_id),
        superpixels=f"{base}/superpixels?map_id={query.superpixel_map_id}" if query else None,
        history=service.history(session, image_id),
    )


@router.get("/images/{image_id}", response_model=ReviewDetail)
def read_review(image_id: Id, access: ProjectLead, session: SessionDep) -> ReviewDetail:
    """One image for review: its state, the query's superpixels, links to the image, mask and
    superpixel map, and every decision so far."""
    return _detail(session, access.project.id, image_id)


@router.post(
    "/images/{image_id}",
    response_model=ReviewRead,
    status_code=status.HTTP_201_CREATED,
    responses=_CONFLICT,
)
def review_image(
    image_id: Id,
    body: ReviewCreate,
    access: ProjectLead,
    session: SessionDep,
    settings: SettingsDep,
) -> ReviewRead:
    """Accepts a submitted image, or sends it back (``comment`` required): it returns to the
    annotator who labeled it, first in their queue, with the comment shown in the workspace.
    Recorded with who and when; ``GET`` the image for the history."""
    review = service.decide(
        session,
        access.project.id,
        image_id,
        access.user,
        body.decision,
        body.comment,
        settings,
    )
    session.commit()
    return next(r for r in service.history(session, image_id) if r.id == review.id)
