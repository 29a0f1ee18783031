"""Image upload and download, ground truth, thumbnails and superpixel maps."""

from __future__ import annotations

from typing import Annotated

from fastapi import (
    APIRouter,
    File,
    Form,
    Header,
    HTTPException,
    Query,
    Response,
    UploadFile,
    status,
)
from sqlalchemy import Select, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, undefer

from backend.deps import SessionDep, SettingsDep
from backend.http_guards import content_disposition
from backend.images import service
from backend.images.ingest_jobs import create_ingest_jobs, send_ingest_jobs
from backend.images.previews import needs_preview, preview_etag, stored_preview
from backend.images.schemas import DuplicateRead, ImageRead, ImageUpdate, UploadReport
from backend.images.validation import UploadRefused, UploadSource, display_name
from backend.projects.deps import ProjectLead, ProjectMember
from backend.validation_types import MAX_ID, Id, IdValue
from core.models import Annotation, Image, ImageStatus, Split, SuperpixelMap
from core.settings import Settings
from core.superpixel_maps import current_map

router = APIRouter(prefix="/projects/{project_id}/images", tags=["images"])

PNG = {"content": {"image/png": {}}, "description": "PNG bytes"}
# An image's bytes (and so its preview) never change; the ETag revalidates after a day.
CACHE_CONTROL = "private, max-age=86400"


def _image_rows(project_id: int) -> Select[Image, int, int, bool]:
    return (
        select(
            Image,
            Annotation.version,
            Annotation.labeled_pixels,
            Image.ground_truth_png.is_not(None),
        )
        .join(Annotation, Annotation.image_id == Image.id)
        .where(Image.project_id == project_id)
    )


def _to_read(image: Image, version: int, labeled: int, has_truth: bool) -> ImageRead:
    return ImageRead(
        id=image.id,
        filename=image.filename,
        content_type=image.content_type,
        width=image.width,
        height=image.height,
        sha256=image.sha256,
        split=image.split,
        status=image.status,
        created_at=image.created_at,
        annotation_version=version,
        labeled_pixels=labeled,
        has_ground_truth=has_truth,
    )


def read_image(session: Session, project_id: int, image_id: int) -> ImageRead:
    row = session.execute(_image_rows(project_id).where(Image.id == image_id)).first()
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"No image {image_id} in this project.")
    return _to_read(*row)


def _read_mask_upload(upload: UploadFile, settings: Settings) -> bytes:
    data = upload.file.read(settings.max_upload_bytes + 1)
    if len(data) > settings.max_upload_bytes:
        name = display_name(upload.filename)
        raise UploadRefused(
            413, f"{name}: larger than the limit of {settings.max_upload_bytes} bytes."
        )
    return data


def _matches(if_none_match: str | None, etag: str) -> bool:
    return if_none_match is not None and etag in {t.strip() for t in if_none_match.split(",")}


def refusal(error: UploadRefused) -> HTTPException:
    return HTTPException(error.status_code, error.message)


@router.post(
    "",
    response_model=UploadReport,
    status_code=status.HTTP_201_CREATED,
    summary="Upload images (many files and/or zip archives)",
    responses={
        503: {
            "description": "The images were stored but their superpixel job could not be "
            "queued (broker unreachable): the message names the failed jobs to retry"
        }
    },
)
def upload_images(
    files: Annotated[
        list[UploadFile], File(description="Image files (PNG, JPEG, WEBP, TIFF, BMP) or zips.")
    ],
    access: ProjectLead,
    session: SessionDep,
    settings: SettingsDep,
    split: Annotated[Split, Form()] = Split.pool,
) -> UploadReport:
    """Stores every image of the request, or none: one bad file refuses the whole request
    with a 4xx naming it. Images already in the project (same SHA-256) are listed under
    ``duplicates`` and not stored again.

    ``curl -H "Authorization: Bearer $TOKEN" -F files=@a.png -F files=@b.zip
    -F split=pool $URL/api/v1/projects/1/images``
    """
    try:
        # Starlette spools parts to temporary files; validation streams from them.
        sources = [UploadSource(upload.filename or "unnamed", upload.file) for upload in files]
        result = service.ingest_images(session, access.project, sources, split, settings)
        ingest_jobs = create_ingest_jobs(session, access.project.id, result.created, settings)
        session.commit()
    except UploadRefused as error:
        session.rollback()
        raise refusal(error) from error
    except IntegrityError as error:
        # Another upload stored the same image between our duplicate check and our insert.
        session.rollback()
        raise HTTPException(
            status.HTTP_409_CONFLICT, "A concurrent upload stored some of these images; retry."
        ) from error
    # The images show "processing" until a worker has computed their superpixels.
    unsent = send_ingest_jobs(session, ingest_jobs, settings)
    if unsent:
        # Kept, not rolled back: the images are valid and stored; only their superpixels
        # wait, and the failed job is the lead's visible handle to run them (a 201 would
        # hide that they will never be ready on their own).
        job_ids = ", ".join(str(job.id) for job in unsent)
        base = f"/api/v1/projects/{access.project.id}/jobs"
        shown = ", ".join(map(str, result.created[:20]))
        more = f" and {len(result.created) - 20} more" if len(result.created) > 20 else ""
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            f"The {len(result.created)} images were stored (ids {shown}{more}), but their "
            f"superpixel job {job_ids} "
            f"could not be queued ({unsent[0].error}). They stay 'processing' until a lead "
            f"retries the job once the broker is reachable (POST {base}/<job>/retry); "
            "uploading them again only lists them as duplicates.",
            headers={"Retry-After": "60"},
        )
    rows = session.execute(_image_rows(access.project.id).where(Image.id.in_(result.created)))
    created = sorted((_to_read(*row) for row in rows), key=lambda image: image.id)
    return UploadReport(
        created=created,
        duplicates=[
            DuplicateRead(
                filename=d.filename, sha256=d.sha256, existing_image_id=d.existing_image_id
            )
            for d in result.duplicates
        ],
    )


@router.get("", response_model=list[ImageRead])
def list_images(
    access: ProjectMember,
    session: SessionDep,
    response: Response,
    split: Split | None = None,
    image_status: Annotated[ImageStatus | None, Query(alias="status")] = None,
    offset: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[ImageRead]:
    """One page of the project's images, oldest first; ``X-Total-Count`` has the total."""
    query = _image_rows(access.project.id)
    if split is not None:
        query = query.where(Image.split == split)
    if image_status is not None:
        query = query.where(Image.status == image_status)
    total = session.scalar(select(func.count()).select_from(query.subquery()))
    response.headers["X-Total-Count"] = str(total or 0)
    rows = session.execute(query.order_by(Image.id).offset(offset).limit(limit))
    return [_to_read(*row) for row in rows]


@router.get("/{image_id}", response_model=ImageRead)
def image_detail(image_id: Id, access: ProjectMember, session: SessionDep) -> ImageRead:
    return read_image(session, access.project.id, image_id)


@router.patch("/{image_id}", response_model=ImageRead)
def update_image(
    image_id: Id, body: ImageUpdate, access: ProjectLead, session: SessionDep
) -> ImageRead:
    """Moves an image between pool, validation and test."""
    image = service.get_image(session, access.project.id, image_id)
    image.split = body.split
    session.commit()
    return read_image(session, access.project.id, image_id)


@router.delete("/{image_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_image(image_id: Id, access: ProjectLead, session: SessionDep) -> None:
    """Deletes an image with its mask, history, superpixels and queries."""
    session.delete(service.get_image(session, access.project.id, image_id))
    session.commit()


@router.get(
    "/{image_id}/file",
    response_class=Response,
    responses={200: {"content": {"image/*": {}}, "description": "The uploaded bytes"}},
)
def download_image(
    image_id: Id,
    access: ProjectMember,
    session: SessionDep,
    if_none_match: Annotated[str | None, Header()] = None,
) -> Response:
    """The stored image: the upload itself (EXIF-rotated photos: upright, as PNG)."""
    image = service.get_image(session, access.project.id, image_id)
    # Stored bytes never change, so the upload's hash is a strong validator.
    etag = f'"{image.sha256}"'
    headers = {"ETag": etag, "Cache-Control": CACHE_CONTROL}
    if _matches(if_none_match, etag):
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers=headers)
    data = session.scalar(select(Image.data).where(Image.id == image.id))
    # The type validation found, never the uploader's claim; the name follows that type.
    headers["Content-Disposition"] = content_disposition(
        "inline", image.filename, image.content_type
    )
    return Response(data, media_type=image.content_type, headers=headers)


@router.get(
    "/{image_id}/preview",
    response_class=Response,
    responses={
        200: {
            "content": {"image/jpeg": {}},
            "description": "The image downscaled to at most 2 Mpx (aspect kept), as JPEG",
        },
        304: {"description": "Not modified (If-None-Match names the current ETag)"},
        404: {
            "description": "No such image, or an image of at most TESSERA_LARGE_IMAGE_PIXELS "
            "pixels, which has no preview (download /file)"
        },
    },
)
def download_preview(
    image_id: Id,
    access: ProjectMember,
    session: SessionDep,
    settings: SettingsDep,
    if_none_match: Annotated[str | None, Header()] = None,
) -> Response:
    """What the annotator shows of a large image while ``/file`` downloads: the image
    downscaled to at most 2 Mpx. Only images over ``TESSERA_LARGE_IMAGE_PIXELS`` have one
    (a task's ``links.preview`` is null otherwise); images stored before previews existed
    get theirs on first request."""
    image = service.get_image(session, access.project.id, image_id)
    if not needs_preview(image.width, image.height, settings):
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            f"Image {image_id} ({image.width}x{image.height}) has no preview: only images "
            f"over {settings.large_image_pixels} pixels (TESSERA_LARGE_IMAGE_PIXELS) do; "
            "download /file instead.",
        )
    etag = preview_etag(image.sha256)
    headers = {"ETag": etag, "Cache-Control": CACHE_CONTROL}
    if _matches(if_none_match, etag):
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers=headers)
    preview = stored_preview(session, image)
    session.commit()
    return Response(preview, media_type="image/jpeg", headers=headers)


@router.get(
    "/{image_id}/thumbnail",
    response_class=Response,
    responses={200: {"content": {"image/jpeg": {}}, "description": "JPEG thumbnail"}},
)
def download_thumbnail(image_id: Id, access: ProjectMember, session: SessionDep) -> Response:
    image = service.get_image(session, access.project.id, image_id, undefer(Image.thumbnail_jpeg))
    return Response(
        image.thumbnail_jpeg,
        media_type="image/jpeg",
        headers={"Cache-Control": CACHE_CONTROL},
    )


@router.get(
    "/{image_id}/superpixels",
    response_class=Response,
    responses={
        200: {
            "content": {"application/octet-stream": {}},
            "description": "zlib(raw little-endian uint16|int32, shape height x width); "
            "see headers X-Superpixel-Width/-Height/-Dtype/-Count.",
        }
    },
)
def download_superpixels(
    image_id: Id,
    access: ProjectMember,
    session: SessionDep,
    map_id: Annotated[
        IdValue | None,
        Query(
            description="A specific map (a task's superpixel_map_id); default: the map "
            "for the project's current size and algorithm."
        ),
    ] = None,
) -> Response:
    """The image's superpixel ids in the compact encoding (see the response description)."""
    image = service.get_image(session, access.project.id, image_id)
    if map_id is not None:
        superpixel_map = session.get(SuperpixelMap, map_id)
        if superpixel_map is None or superpixel_map.image_id != image.id:
            raise HTTPException(
                status.HTTP_404_NOT_FOUND, f"Image {image_id} has no superpixel map {map_id}."
            )
    else:
        superpixel_map = current_map(session, image.id, access.project)
    if superpixel_map is None:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            f"Superpixels of image {image_id} are not computed yet for size "
            f"{access.project.superpixel_size} ({access.project.superpixel_algorithm.value}).",
        )
    return Response(
        superpixel_map.labels_zlib,
        media_type="application/octet-stream",
        headers={
            "X-Superpixel-Width": str(image.width),
            "X-Superpixel-Height": str(image.height),
            "X-Superpixel-Dtype": superpixel_map.dtype,
            "X-Superpixel-Count": str(superpixel_map.count),
            "X-Superpixel-Map-Id": str(superpixel_map.id),
        },
    )


@router.put("/{image_id}/ground-truth", response_model=ImageRead)
def upload_ground_truth(
    image_id: Id,
    file: Annotated[UploadFile, File(description="Lossless single-channel mask, 255 = unlabeled")],
    access: ProjectLead,
    session: SessionDep,
    settings: SettingsDep,
) -> ImageRead:
    """Stores a complete (or partial) true mask, for validation and simulated annotation."""
    image = service.get_image(session, access.project.id, image_id)
    try:
        data = _read_mask_upload(file, settings)
        service.set_ground_truth(session, image, file.filename or "mask", data, settings)
        session.commit()
    except UploadRefused as error:
        session.rollback()
        raise refusal(error) from error
    return read_image(session, access.project.id, image_id)


@router.get("/{image_id}/ground-truth", response_class=Response, responses={200: PNG})
def download_ground_truth(image_id: Id, access: ProjectLead, session: SessionDep) -> Response:
    image = service.get_image(session, access.project.id, image_id, undefer(Image.ground_truth_png))
    if image.ground_truth_png is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"Image {image_id} has no ground truth.")
    return Response(image.ground_truth_png, media_type="image/png")


@router.delete("/{image_id}/ground-truth", status_code=status.HTTP_204_NO_CONTENT)
def delete_ground_truth(image_id: Id, access: ProjectLead, session: SessionDep) -> None:
    image = service.get_image(session, access.project.id, image_id)
    service.delete_ground_truth(session, image)
    session.commit()
