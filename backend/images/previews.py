"""Previews of large images (issue 15): a JPEG of at most ``PREVIEW_PIXELS`` that the
annotator shows, and paints over, while the full upload downloads and decodes.

Made at upload for images over ``Settings.large_image_pixels``; images stored before
migration 0013 get theirs on first request (``stored_preview``). JPEG rather than WebP:
at 1632x1224 Pillow encodes it in 10 ms against WebP's 35-160 ms, and Chromium decodes it
in 22 ms against 30 ms; WebP's smaller file (~0.55x) saves little on a LAN.
"""

from __future__ import annotations

import io
import math
import warnings
from typing import Final

from PIL import Image as PILImage
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from core.errors import NotFound
from core.models import Image
from core.settings import Settings

# The same cap as the annotator's own downscaled copy (PREVIEW_PIXELS in viewport.ts).
PREVIEW_PIXELS: Final = 2_000_000
PREVIEW_QUALITY: Final = 85
# Part of the ETag. Changing how previews are made means bumping it and clearing the
# stored ones (a migration setting images.preview_jpeg to NULL): they are remade on request.
PREVIEW_VERSION: Final = 1
_DRAWABLE_MODES: Final = {"RGB", "RGBA", "L", "LA"}


def needs_preview(width: int, height: int, settings: Settings) -> bool:
    return width * height > settings.large_image_pixels


def preview_size(width: int, height: int) -> tuple[int, int]:
    """(width, height) within PREVIEW_PIXELS, aspect kept; the image's own size if it fits.

    The formula of the annotator's ``previewSize`` (viewport.ts)."""
    if width * height <= PREVIEW_PIXELS:
        return width, height
    scale = math.sqrt(PREVIEW_PIXELS / (width * height))
    return max(1, math.floor(width * scale)), max(1, math.floor(height * scale))


def preview_etag(sha256: str) -> str:
    """Strong validator: the stored bytes never change, and the preview follows from them."""
    return f'"{sha256}-preview{PREVIEW_VERSION}"'


def downscaled(image: PILImage.Image) -> PILImage.Image:
    """``image`` (decoded, upright) as RGB within PREVIEW_PIXELS."""
    if image.mode not in _DRAWABLE_MODES:
        # Palette and 1-bit images resize by nearest neighbour only; 16-bit as thumbnails do.
        image = image.convert("RGB")
    # reducing_gap: a box reduce first, then Lanczos on the small copy (~2x faster, as good).
    small = image.resize(
        preview_size(image.width, image.height),
        PILImage.Resampling.LANCZOS,
        reducing_gap=2.0,
    )
    return small.convert("RGB")


def encode_preview(small: PILImage.Image) -> bytes:
    buffer = io.BytesIO()
    small.save(buffer, format="JPEG", quality=PREVIEW_QUALITY)
    return buffer.getvalue()


def preview_from_stored(data: bytes) -> bytes:
    """The preview of stored image bytes (upright already: see ``upright_bytes``)."""
    with warnings.catch_warnings():
        # Stored images passed the upload's own pixel cap.
        warnings.simplefilter("ignore", PILImage.DecompressionBombWarning)
        with PILImage.open(io.BytesIO(data)) as image:
            # JPEG decodes straight at a fraction of its size (DCT scaling): much less work.
            image.draft("RGB", preview_size(image.width, image.height))
            return encode_preview(downscaled(image))


def stored_preview(session: Session, image: Image) -> bytes:
    """The image's preview, made and stored (flushed) on first request if it has none."""
    preview = session.scalar(select(Image.preview_jpeg).where(Image.id == image.id))
    if preview is not None:
        return preview
    data = session.scalar(select(Image.data).where(Image.id == image.id))
    if data is None:  # deleted meanwhile
        raise NotFound(f"No image {image.id} in this project.")
    preview = preview_from_stored(data)
    # Two first requests at once make the same bytes; the later write changes nothing.
    session.execute(
        update(Image)
        .where(Image.id == image.id, Image.preview_jpeg.is_(None))
        .values(preview_jpeg=preview)
    )
    session.flush()
    return preview
