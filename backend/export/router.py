"""Download a project's labels."""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterator
from typing import IO, Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse, StreamingResponse

from backend.deps import SessionDep
from backend.export import service
from backend.projects.deps import ProjectLead

router = APIRouter(prefix="/projects/{project_id}", tags=["export"])

_CHUNK = 1024 * 1024


def _iter_file(handle: IO[bytes]) -> Iterator[bytes]:
    try:
        handle.seek(0)
        while chunk := handle.read(_CHUNK):
            yield chunk
    finally:
        handle.close()


@router.get(
    "/export",
    response_class=StreamingResponse,
    response_model=None,
    responses={
        200: {
            "content": {"application/zip": {}, "application/json": {}},
            "description": "zip: masks/*.png (255 = unlabeled), classes.json, manifest.json "
            "with provenance; coco: COCO-style JSON with uncompressed RLE per class.",
        }
    },
)
def export_project(
    access: ProjectLead,
    session: SessionDep,
    export_format: Annotated[Literal["zip", "coco"], Query(alias="format")] = "zip",
) -> StreamingResponse | JSONResponse:
    """Exports every stored partial mask of the project."""
    slug = re.sub(r"[^A-Za-z0-9_-]+", "_", access.project.name)[:60] or "project"
    if export_format == "coco":
        return JSONResponse(
            service.coco_export(session, access.project),
            headers={"Content-Disposition": f'attachment; filename="{slug}-coco.json"'},
        )
    # Spooled: small exports stay in memory, large ones go to a temporary file.
    handle = tempfile.SpooledTemporaryFile(max_size=64 * _CHUNK)  # noqa: SIM115
    service.write_export_zip(session, access.project, handle)
    return StreamingResponse(
        _iter_file(handle),
        media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="{slug}-export.zip"'},
    )
