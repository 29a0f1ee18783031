"""Checks on everything uploaded, before any of it is stored.

Each refusal raises ``UploadRefused`` with an HTTP status and a message naming the file and
the problem; callers validate a whole request first and store nothing unless all of it passed.
Uploaded names are only ever display strings: nothing here touches the filesystem.
"""

from __future__ import annotations

import hashlib
import io
import warnings
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Final

import numpy as np
from numpy.typing import NDArray
from PIL import Image as PILImage
from PIL import ImageOps, UnidentifiedImageError

from backend.images.previews import downscaled, encode_preview, needs_preview
from core.settings import Settings

UNLABELED: Final = 255

# Pillow format name -> MIME type. Formats a browser can show or that datasets commonly use.
IMAGE_FORMATS: Final = {
    "PNG": "image/png",
    "JPEG": "image/jpeg",
    "WEBP": "image/webp",
    "TIFF": "image/tiff",
    "BMP": "image/bmp",
}
_EXIF_ORIENTATION: Final = 0x0112
# Masks hold class indices, so only lossless formats are accepted.
MASK_FORMATS: Final = {"PNG", "TIFF", "BMP"}
MASK_MODES: Final = {"L", "P", "I", "I;16"}

# Signatures of archive formats found inside a zip ("nested archive" refusal).
_ARCHIVE_MAGIC: Final = (
    b"PK\x03\x04",
    b"PK\x05\x06",
    b"\x1f\x8b",  # gzip
    b"7z\xbc\xaf\x27\x1c",
    b"Rar!",
    b"BZh",
    b"\xfd7zXZ\x00",
)
_ARCHIVE_SUFFIXES: Final = (".zip", ".tar", ".gz", ".tgz", ".bz2", ".xz", ".7z", ".rar")
# Written by macOS and Windows archivers; never images, skipped rather than refused.
_JUNK_PREFIXES: Final = ("__MACOSX/",)
_JUNK_NAMES: Final = (".DS_Store", "Thumbs.db", "desktop.ini")


class UploadRefused(Exception):
    """An upload that breaks a rule; ``status_code`` is the HTTP answer."""

    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message


@dataclass(frozen=True)
class UploadedFile:
    """One file of an upload (a plain part or a zip entry), in memory."""

    name: str  # display only
    data: bytes


@dataclass(frozen=True)
class UploadSource:
    """One uploaded part: a plain file or a zip archive, as a seekable binary stream."""

    name: str
    stream: IO[bytes]


@dataclass(frozen=True)
class DecodedImage:
    """What validation learned about an image; its bytes are not kept here."""

    name: str
    format: str
    content_type: str
    width: int
    height: int
    sha256: str  # of the uploaded bytes (duplicate detection)
    thumbnail_jpeg: bytes
    preview_jpeg: bytes | None  # large images only (previews.py)
    reoriented: bool = False  # EXIF rotation applied: stored bytes are upright_bytes(upload)


def display_name(name: str | None) -> str:
    """The last path component of an uploaded name, trimmed; never used to open a file."""
    if not name:
        return "unnamed"
    base = name.replace("\\", "/").rsplit("/", 1)[-1].strip()
    return base[:255] or "unnamed"


def is_archive(head: bytes) -> bool:
    return head.startswith((b"PK\x03\x04", b"PK\x05\x06"))


def _open_image(name: str, data: bytes, settings: Settings) -> PILImage.Image:
    """Opens (headers only) and enforces the byte and pixel caps before any decoding."""
    if len(data) > settings.max_upload_bytes:
        raise UploadRefused(
            413, f"{name}: {len(data)} bytes exceeds the limit of {settings.max_upload_bytes}."
        )
    if not data:
        raise UploadRefused(422, f"{name}: the file is empty.")
    try:
        with warnings.catch_warnings():
            # Pillow warns above its own threshold; our cap below decides instead.
            warnings.simplefilter("ignore", PILImage.DecompressionBombWarning)
            image = PILImage.open(io.BytesIO(data))
    except PILImage.DecompressionBombError as error:
        raise UploadRefused(413, f"{name}: refused as a decompression bomb ({error}).") from error
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as error:
        raise UploadRefused(
            415, f"{name}: not an image file Tessera can read (whatever its extension says)."
        ) from error
    width, height = image.size
    if width * height > settings.max_image_pixels:
        raise UploadRefused(
            413,
            f"{name}: {width}x{height} = {width * height} pixels exceeds the limit of "
            f"{settings.max_image_pixels} per image (TESSERA_MAX_IMAGE_PIXELS; decompression "
            "bomb guard).",
        )
    if width < 2 or height < 2:
        raise UploadRefused(422, f"{name}: {width}x{height} is too small to segment.")
    return image


def _decode_pixels(name: str, image: PILImage.Image) -> None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", PILImage.DecompressionBombWarning)
            image.load()
    except (OSError, ValueError, SyntaxError, PILImage.DecompressionBombError) as error:
        raise UploadRefused(422, f"{name}: the image data is corrupt or truncated.") from error


def make_thumbnail(image: PILImage.Image, size: int) -> bytes:
    thumbnail = image.convert("RGB")
    thumbnail.thumbnail((size, size))
    buffer = io.BytesIO()
    thumbnail.save(buffer, format="JPEG", quality=85)
    return buffer.getvalue()


def _exif_orientation(image: PILImage.Image) -> int:
    try:
        return int(image.getexif().get(_EXIF_ORIENTATION, 1))
    except (ValueError, TypeError, OSError, SyntaxError):
        return 1


def _upright(image: PILImage.Image) -> PILImage.Image:
    upright = ImageOps.exif_transpose(image)
    if upright.mode not in {"RGB", "RGBA", "L", "LA"}:
        upright = upright.convert("RGB")
    return upright


def upright_bytes(data: bytes) -> bytes:
    """The bytes to store: the upload itself, or, when EXIF asks for a rotation, the upright
    pixels as PNG.

    Browsers apply EXIF orientation when they draw an image while Pillow, numpy and the
    model do not; storing upright pixels gives masks one orientation everywhere.
    """
    with PILImage.open(io.BytesIO(data)) as image:
        if _exif_orientation(image) in (0, 1):
            return data
        buffer = io.BytesIO()
        _upright(image).save(buffer, format="PNG")
        return buffer.getvalue()


def decode_image(upload: UploadedFile, settings: Settings) -> DecodedImage:
    """Checks one image by decoding it with Pillow; the real format decides, not the name."""
    name = display_name(upload.name)
    image = _open_image(name, upload.data, settings)
    if image.format not in IMAGE_FORMATS:
        raise UploadRefused(
            415,
            f"{name}: {image.format} images are not accepted; use one of "
            f"{', '.join(sorted(IMAGE_FORMATS))}.",
        )
    _decode_pixels(name, image)
    image_format = image.format
    reoriented = _exif_orientation(image) not in (0, 1)
    if reoriented:
        image, image_format = _upright(image), "PNG"
    preview_jpeg = None
    small = image
    if needs_preview(image.width, image.height, settings):
        small = downscaled(image)
        preview_jpeg = encode_preview(small)
    return DecodedImage(
        name=name,
        format=image_format,
        content_type=IMAGE_FORMATS[image_format],
        width=image.width,
        height=image.height,
        sha256=hashlib.sha256(upload.data).hexdigest(),
        # From the preview when there is one: the same picture in at most 2 Mpx.
        thumbnail_jpeg=make_thumbnail(small, settings.thumbnail_size),
        preview_jpeg=preview_jpeg,
        reoriented=reoriented,
    )


def decode_upload(sources: list[UploadSource], settings: Settings) -> list[DecodedImage]:
    """Every image of an upload checked by ``decode_image``, and their pixels together held
    to ``max_upload_pixels``: the superpixel work one upload queues for the workers."""
    decoded: list[DecodedImage] = []
    total = 0
    for file in iter_upload_files(sources, settings):
        image = decode_image(file, settings)
        total += image.width * image.height
        if total > settings.max_upload_pixels:
            raise UploadRefused(
                413,
                f"{image.name}: the upload's images reach {total} pixels together, over the "
                f"limit of {settings.max_upload_pixels} per upload (TESSERA_MAX_UPLOAD_PIXELS, "
                "the worker's share); send them in several uploads.",
            )
        decoded.append(image)
    return decoded


def _refuse_unsafe_entry_name(archive: str, entry: str) -> None:
    normalized = entry.replace("\\", "/")
    parts = normalized.split("/")
    if normalized.startswith("/") or (len(entry) > 1 and entry[1] == ":"):
        raise UploadRefused(422, f"{archive}: entry {entry!r} has an absolute path.")
    if ".." in parts:
        raise UploadRefused(422, f"{archive}: entry {entry!r} points outside the archive ('..').")


def _is_junk(entry: str) -> bool:
    base = entry.rsplit("/", 1)[-1]
    return entry.startswith(_JUNK_PREFIXES) or base in _JUNK_NAMES or base.startswith("._")


class _InflateBudget:
    """Bytes an upload may inflate to in total (archives are counted as they are read)."""

    def __init__(self, settings: Settings) -> None:
        self.left = settings.max_zip_uncompressed_bytes
        self.limit = settings.max_zip_uncompressed_bytes

    def spend(self, size: int, what: str) -> None:
        self.left -= size
        if self.left < 0:
            raise UploadRefused(
                413,
                f"{what}: the upload expands past {self.limit} bytes "
                "(TESSERA_MAX_ZIP_UNCOMPRESSED_BYTES; zip bomb guard).",
            )


def _zip_entries(
    archive: str, bundle: zipfile.ZipFile, settings: Settings
) -> list[zipfile.ZipInfo]:
    """The archive's file entries, after the rules that need only its directory."""
    entries = bundle.infolist()
    if len(entries) > settings.max_zip_entries:
        raise UploadRefused(
            413,
            f"{archive}: {len(entries)} entries exceeds the limit of {settings.max_zip_entries}.",
        )
    for info in entries:
        _refuse_unsafe_entry_name(archive, info.filename)
    declared = sum(info.file_size for info in entries)
    if declared > settings.max_zip_uncompressed_bytes:
        raise UploadRefused(
            413,
            f"{archive}: uncompresses to {declared} bytes, over the limit of "
            f"{settings.max_zip_uncompressed_bytes} (zip bomb guard).",
        )
    files = [info for info in entries if not info.is_dir() and not _is_junk(info.filename)]
    for info in files:
        if info.flag_bits & 0x1:
            raise UploadRefused(422, f"{archive}: entry {info.filename!r} is encrypted.")
        if info.filename.lower().endswith(_ARCHIVE_SUFFIXES):
            raise UploadRefused(
                422,
                f"{archive}: entry {info.filename!r} is an archive; nested archives are "
                "not accepted.",
            )
    if not files:
        raise UploadRefused(422, f"{archive}: the archive contains no files.")
    return files


def _iter_zip(
    source: UploadSource, settings: Settings, budget: _InflateBudget
) -> Iterator[UploadedFile]:
    """The files inside a zip archive, one at a time, each checked against every rule.

    Sizes are enforced on the bytes actually inflated, not on the sizes the archive claims.
    """
    archive = display_name(source.name)
    try:
        bundle = zipfile.ZipFile(source.stream)
        entries = _zip_entries(archive, bundle, settings)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as error:
        raise UploadRefused(422, f"{archive}: not a readable zip archive.") from error
    for info in entries:
        limit = min(settings.max_upload_bytes, max(budget.left, 0))
        try:
            with bundle.open(info) as stream:
                data = stream.read(limit + 1)
        except (zipfile.BadZipFile, OSError, ValueError, NotImplementedError, EOFError) as error:
            raise UploadRefused(
                422, f"{archive}: entry {info.filename!r} cannot be extracted."
            ) from error
        if len(data) > limit:
            raise UploadRefused(
                413,
                f"{archive}: entry {info.filename!r} inflates past the size limits "
                "(zip bomb guard).",
            )
        budget.spend(len(data), archive)
        if data.startswith(_ARCHIVE_MAGIC):
            raise UploadRefused(
                422,
                f"{archive}: entry {info.filename!r} is an archive; nested archives are "
                "not accepted.",
            )
        yield UploadedFile(name=info.filename, data=data)


def iter_upload_files(sources: list[UploadSource], settings: Settings) -> Iterator[UploadedFile]:
    """Every file of an upload in a stable order, zip archives (known by content) expanded.

    Only one file's bytes are in memory at a time, so the order can be replayed cheaply.
    """
    budget = _InflateBudget(settings)
    for source in sources:
        source.stream.seek(0)
        head = source.stream.read(4)
        source.stream.seek(0)
        if is_archive(head):
            yield from _iter_zip(source, settings, budget)
            continue
        data = source.stream.read(settings.max_upload_bytes + 1)
        name = display_name(source.name)
        if len(data) > settings.max_upload_bytes:
            raise UploadRefused(
                413, f"{name}: larger than the limit of {settings.max_upload_bytes} bytes."
            )
        budget.spend(len(data), name)
        yield UploadedFile(name=source.name, data=data)


def decode_mask(
    name: str,
    data: bytes,
    *,
    width: int,
    height: int,
    class_indices: set[int],
    settings: Settings,
) -> NDArray[np.uint8]:
    """A (height, width) uint8 mask whose values are class indices or 255 (unlabeled)."""
    name = display_name(name)
    image = _open_image(name, data, settings)
    if image.format not in MASK_FORMATS:
        raise UploadRefused(
            415,
            f"{name}: masks must be lossless ({', '.join(sorted(MASK_FORMATS))}), "
            f"got {image.format}.",
        )
    if image.mode not in MASK_MODES:
        raise UploadRefused(
            422,
            f"{name}: a mask must be single-channel (class index per pixel), got mode "
            f"{image.mode}.",
        )
    if image.size != (width, height):
        raise UploadRefused(
            422,
            f"{name}: the mask is {image.width}x{image.height} but the image is {width}x{height}.",
        )
    _decode_pixels(name, image)
    values = np.asarray(image)
    allowed = np.array(sorted(class_indices | {UNLABELED}), dtype=np.int64)
    invalid = ~np.isin(values, allowed)
    if invalid.any():
        bad_values = np.unique(values[invalid])[:10].tolist()
        raise UploadRefused(
            422,
            f"{name}: {int(invalid.sum())} pixels have values {bad_values} that are not class "
            f"indices of this project (allowed: {allowed.tolist()}; 255 = unlabeled).",
        )
    return values.astype(np.uint8)
