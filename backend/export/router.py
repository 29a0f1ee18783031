"""Download a project's labels, streamed."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from sqlalchemy.orm import Session, sessionmaker

from backend.export import service
from backend.projects.deps import ProjectLead
from core.models import Project

router = APIRouter(prefix="/projects/{project_id}", tags=["export"])

Chunks = Callable[[Session, Project], Iterator[bytes]]


def _streamed(factory: sessionmaker[Session], project_id: int, chunks: Chunks) -> Iterator[bytes]:
    """``chunks`` of the project in a session of its own, open while the response streams
    (the request's session closes when the endpoint returns)."""
    with factory() as session:
        project = session.get(Project, project_id)
        if project is None:
            raise LookupError(f"project {project_id} was deleted during its export")
        yield from chunks(session, project)


@router.get(
    "/export",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {"application/zip": {}, "application/json": {}},
            "description": "zip: masks/*.png (255 = unlabeled), classes.json, manifest.json "
            "with provenance; coco: COCO-style JSON with uncompressed RLE per class. "
            "Streamed (chunked) as it is produced.",
        }
    },
)
def export_project(
    access: ProjectLead,
    request: Request,
    export_format: Annotated[Literal["zip", "coco"], Query(alias="format")] = "zip",
) -> StreamingResponse:
    """Exports every stored partial mask of the project."""
    slug = re.sub(r"[^A-Za-z0-9_-]+", "_", access.project.name)[:60] or "project"
    factory: sessionmaker[Session] = request.app.state.session_factory
    if export_format == "coco":
        return StreamingResponse(
            _streamed(factory, access.project.id, service.coco_export_chunks),
            media_type="application/json",
            headers={"Content-Disposition": f'attachment; filename="{slug}-coco.json"'},
        )
    return StreamingResponse(
        _streamed(factory, access.project.id, service.export_zip_chunks),
        media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="{slug}-export.zip"'},
    )
