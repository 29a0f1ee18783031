"""The look-ahead: which tasks ``tasks/next`` would most likely hand a user after the one they
hold, read without a lease or any write, so the browser can download the next image while the
annotator still works on the current one."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import bindparam, or_, select
from sqlalchemy.orm import Session

from backend.annotations import service
from backend.annotations.schemas import TaskLinks
from core.models import Annotation, Image, Query
from core.models.base import utc_now

MAX_UPCOMING = 3


class UpcomingTask(BaseModel):
    """A task the caller would probably get next; not reserved for them (anyone may take it
    first), so it only tells the client what to download ahead."""

    model_config = ConfigDict(
        json_schema_serialization_defaults_required=True,
        json_schema_extra={
            "examples": [
                {
                    "query_id": 13,
                    "image_id": 8,
                    "width": 480,
                    "height": 360,
                    "superpixel_map_id": 8,
                    "superpixel_ids": [3, 11],
                    "mask_version": 0,
                    "links": {
                        "image": "/api/v1/projects/1/images/8/file",
                        "mask": "/api/v1/projects/1/images/8/mask",
                        "superpixels": "/api/v1/projects/1/images/8/superpixels?map_id=8",
                        "uncertainty": "/api/v1/projects/1/queries/13/uncertainty",
                    },
                }
            ]
        },
    )

    query_id: int
    image_id: int
    width: int
    height: int
    superpixel_map_id: int = Field(description="A prefetched map is usable only for this id.")
    superpixel_ids: list[int]
    mask_version: int = Field(description="A prefetched mask is usable only at this version.")
    links: TaskLinks


@dataclass(frozen=True)
class UpcomingQuery:
    query_id: int
    image_id: int
    width: int
    height: int
    superpixel_map_id: int
    superpixel_ids: list[int]
    mask_version: int


# tasks/next's own candidates and order (so the two cannot drift apart), less the caller's
# unexpired leases: the task they are working on is not "next".
_UPCOMING_IDS = service.TASK_CANDIDATES.where(
    or_(
        Query.assignee_id.is_(None),
        Query.assignee_id != bindparam("user_id"),
        Query.lease_expires_at.is_(None),
        Query.lease_expires_at < bindparam("now", type_=Query.lease_expires_at.type),
    )
).limit(MAX_UPCOMING)
_UPCOMING_ROWS = (
    select(
        Query.id,
        Query.image_id,
        Image.width,
        Image.height,
        Query.superpixel_map_id,
        Query.superpixel_ids,
        Annotation.version,
    )
    .join(Image, Image.id == Query.image_id)
    .outerjoin(Annotation, Annotation.image_id == Query.image_id)
    .where(Query.id.in_(bindparam("query_ids", expanding=True)))
)


def upcoming_queries(
    session: Session, project_id: int, user_id: int, exclude: Sequence[int], limit: int
) -> list[UpcomingQuery]:
    """Up to ``limit`` (1..MAX_UPCOMING) queries in the order tasks/next would try them, passing
    over ``exclude`` and the caller's own unexpired leases. Reads only."""
    if not 1 <= limit <= MAX_UPCOMING:
        raise ValueError(f"limit {limit} is not in 1..{MAX_UPCOMING}")
    connection = session.connection()
    ids = (
        connection.execute(
            _UPCOMING_IDS,
            {
                "project_id": project_id,
                "user_id": user_id,
                "now": utc_now(),
                "passed_over": sorted(set(exclude)),
            },
        )
        .scalars()
        .all()[:limit]
    )
    if not ids:
        return []
    rows = {row[0]: row for row in connection.execute(_UPCOMING_ROWS, {"query_ids": list(ids)})}
    return [
        UpcomingQuery(
            query_id=row[0],
            image_id=row[1],
            width=row[2],
            height=row[3],
            superpixel_map_id=row[4],
            superpixel_ids=list(row[5]),
            mask_version=int(row[6] or 0),
        )
        for row in (rows[query_id] for query_id in ids)
    ]
