"""Rows to arrays: images, partial masks, ground truth and superpixel maps from the database."""

from __future__ import annotations

import io
import zlib
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray
from PIL import Image as PILImage
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from core.masks import UNLABELED, decode_stored_mask
from core.models import (
    Annotation,
    Image,
    ImageStatus,
    LabelClass,
    Project,
    Query,
    QueryStatus,
    Split,
    SuperpixelMap,
)
from core.superpixel_codec import decode_superpixels
from core.superpixel_maps import is_current_map
from worker.engine.superpixels import ArrayT, sample_nearest, work_shape


def open_pool_images(project: Project, *columns: Any) -> Select[Any]:
    """``columns`` of the ready pool images that still have an unlabeled pixel and a current
    superpixel map (what a round may score or pick), by image id."""
    return (
        select(*columns)
        .join(Annotation, Annotation.image_id == Image.id)
        .join(SuperpixelMap, SuperpixelMap.image_id == Image.id)
        .where(Image.project_id == project.id, Image.split == Split.pool)
        .where(Image.status == ImageStatus.ready, is_current_map(project))
        .where(Annotation.labeled_pixels < Image.width * Image.height)
        .order_by(Image.id)
    )


def decode_rgb(data: bytes, max_pixels: int | None = None) -> NDArray[np.uint8]:
    """(H, W, 3) uint8 pixels of stored image bytes (stored upright; see upload validation),
    downscaled (aspect kept, box filter) to ``work_shape(H, W, max_pixels)`` when it has
    more pixels; a JPEG is then decoded at a reduced scale already, so a big image never
    needs its full-size array."""
    with PILImage.open(io.BytesIO(data)) as image:
        if max_pixels is None:
            return np.asarray(image.convert("RGB"), dtype=np.uint8).copy()
        height, width = work_shape(image.height, image.width, max_pixels)
        if (height, width) == (image.height, image.width):
            return np.asarray(image.convert("RGB"), dtype=np.uint8).copy()
        image.draft("RGB", (width, height))  # JPEG only: DCT scaling to >= the size asked
        # Resizing before converting keeps a greyscale image at one byte per pixel.
        source = image if image.mode in ("L", "RGB") else image.convert("RGB")
        small = source.resize((width, height), PILImage.Resampling.BOX).convert("RGB")
        return np.asarray(small, dtype=np.uint8).copy()


def image_rgb(session: Session, image_id: int, max_pixels: int | None = None) -> NDArray[np.uint8]:
    """(H, W, 3) uint8 pixels of a stored image, at most ``max_pixels`` of them (see
    ``decode_rgb``)."""
    data = session.scalar(select(Image.data).where(Image.id == image_id))
    if data is None:
        raise LookupError(f"image {image_id} is gone")
    return decode_rgb(data, max_pixels)


def images_rgb(
    session: Session, image_ids: Sequence[int], max_pixels: int | None = None
) -> dict[int, NDArray[np.uint8]]:
    """image id -> (H, W, 3) uint8 pixels (at most ``max_pixels``), read in one query (ids
    that are gone are left out)."""
    rows = session.execute(select(Image.id, Image.data).where(Image.id.in_(list(image_ids))))
    return {image_id: decode_rgb(data, max_pixels) for image_id, data in rows}


def model_shape(image: Image, max_pixels: int) -> tuple[int, int]:
    """(height, width) at which the model sees ``image``: its own size, or downscaled (aspect
    kept) to ``max_pixels`` (``TESSERA_MODEL_MAX_PIXELS``), as ``decode_rgb`` decodes it."""
    return work_shape(image.height, image.width, max_pixels)


def at_model_shape(array: NDArray[ArrayT], image: Image, max_pixels: int) -> NDArray[ArrayT]:
    """A full-size (H, W) mask, map or flag array of ``image`` sampled (nearest) to the
    model's shape; the array itself when the image is not downscaled."""
    return sample_nearest(array, *model_shape(image, max_pixels))


def partial_masks(session: Session, images: Sequence[Image]) -> dict[int, NDArray[np.uint8]]:
    """image id -> (H, W) uint8 current mask, 255 = unlabeled, read in one query."""
    by_id = {image.id: image for image in images}
    rows = session.execute(
        select(Annotation.image_id, Annotation.mask_png).where(Annotation.image_id.in_(list(by_id)))
    )
    masks = {
        image_id: decode_stored_mask(png, by_id[image_id].width, by_id[image_id].height)
        for image_id, png in rows
    }
    for image_id, image in by_id.items():  # no annotation row: nothing labeled
        if image_id not in masks:
            masks[image_id] = decode_stored_mask(None, image.width, image.height)
    return masks


def partial_mask(session: Session, image: Image) -> NDArray[np.uint8]:
    """(H, W) uint8 current mask of ``image``, 255 = unlabeled."""
    png = session.scalar(select(Annotation.mask_png).where(Annotation.image_id == image.id))
    return decode_stored_mask(png, image.width, image.height)


def ground_truth(session: Session, image: Image) -> NDArray[np.uint8] | None:
    png = session.scalar(select(Image.ground_truth_png).where(Image.id == image.id))
    return None if png is None else decode_stored_mask(png, image.width, image.height)


def superpixel_labels(
    session: Session, superpixel_map: SuperpixelMap, image: Image
) -> NDArray[np.int32]:
    blob = session.scalar(
        select(SuperpixelMap.labels_zlib).where(SuperpixelMap.id == superpixel_map.id)
    )
    if blob is None:
        raise LookupError(f"superpixel map {superpixel_map.id} is gone")
    return decode_superpixels(blob, superpixel_map.dtype, image.width, image.height)


def class_count(session: Session, project_id: int) -> int:
    """Model outputs: the highest class index + 1 (indices may have gaps), at least 2."""
    highest = session.scalar(
        select(func.max(LabelClass.index)).where(LabelClass.project_id == project_id)
    )
    return max(int(highest if highest is not None else 0) + 1, 2)


def labeled(mask: NDArray[np.uint8]) -> NDArray[np.bool_]:
    known: NDArray[np.bool_] = mask != UNLABELED
    return known


def asked_superpixels(session: Session, map_ids: Sequence[int]) -> dict[int, set[int]]:
    """map id -> superpixel ids that finished queries on that map asked for (one query)."""
    asked: dict[int, set[int]] = {map_id: set() for map_id in map_ids}
    rows = session.execute(
        select(Query.superpixel_map_id, Query.superpixel_ids).where(
            Query.superpixel_map_id.in_(list(map_ids)), Query.status == QueryStatus.done
        )
    )
    for map_id, ids in rows:
        asked[map_id].update(ids)
    return asked


def answered(
    superpixels: NDArray[np.integer], mask: NDArray[np.uint8], asked_ids: set[int]
) -> NDArray[np.bool_]:
    """(H, W) pixels not to ask about again: labeled ones, and every pixel of a superpixel
    that a finished query already asked for (``asked_superpixels``). People (and the oracle,
    where the ground truth is void) may leave pixels of an asked superpixel unlabeled;
    asking again would pay twice."""
    known = labeled(mask)
    if asked_ids:
        known |= np.isin(superpixels, np.fromiter(asked_ids, dtype=np.int64))
    return known


def pack_floats(values: NDArray[np.floating]) -> bytes:
    return zlib.compress(np.ascontiguousarray(values, dtype="<f4").tobytes(), 6)


def unpack_floats(blob: bytes) -> NDArray[np.float64]:
    return np.frombuffer(zlib.decompress(blob), dtype="<f4").astype(np.float64)


def pack_counts(values: NDArray[np.integer]) -> bytes:
    return zlib.compress(np.ascontiguousarray(values, dtype="<i4").tobytes(), 6)


def unpack_counts(blob: bytes) -> NDArray[np.int64]:
    return np.frombuffer(zlib.decompress(blob), dtype="<i4").astype(np.int64)


def pack_classes(values: NDArray[np.uint8]) -> bytes:
    return zlib.compress(np.ascontiguousarray(values, dtype=np.uint8).tobytes(), 6)


def unpack_classes(blob: bytes) -> NDArray[np.uint8]:
    return np.frombuffer(zlib.decompress(blob), dtype=np.uint8)


def png_bytes(array: NDArray[np.uint8]) -> bytes:
    buffer = io.BytesIO()
    PILImage.fromarray(array, mode="L").save(buffer, format="PNG")
    return buffer.getvalue()
