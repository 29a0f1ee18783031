"""Reading a labeled dataset in the plain "image folder + mask folder" layout.

    ROOT/classes.json            {"ignore_index": 11, "classes": [{"id", "name", "color"}, ...]}
    ROOT/SPLIT/images/NAME.jpg   RGB (any format Pillow reads)
    ROOT/SPLIT/masks/NAME.png    8-bit class ids, same size, same stem

Every problem is raised as a ``DatasetError`` whose message names the file and the fault.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PIL import Image, UnidentifiedImageError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}


class DatasetError(ValueError):
    """The dataset on disk does not have the expected layout or content."""


@dataclass(frozen=True)
class LabelClass:
    index: int
    name: str
    color: tuple[int, int, int]


@dataclass(frozen=True)
class ClassList:
    classes: tuple[LabelClass, ...]
    ignore_index: int | None

    @property
    def names(self) -> list[str]:
        return [label.name for label in self.classes]


@dataclass
class Split:
    names: list[str]
    images: list[NDArray[np.uint8]]  # (H, W, 3)
    masks: list[NDArray[np.uint8]]  # (H, W) class ids; ignore_index where unknown


def read_classes(root: Path) -> ClassList:
    path = root / "classes.json"
    if not path.is_file():
        raise DatasetError(f"{path} is missing: it must list the classes (see the README)")
    try:
        document = json.loads(path.read_text())
        classes = tuple(
            LabelClass(int(c["id"]), str(c["name"]), tuple(int(v) for v in c["color"]))  # type: ignore[arg-type]
            for c in document["classes"]
        )
        ignore = document.get("ignore_index")
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as error:
        raise DatasetError(f"{path} is not a valid class list: {error}") from error
    if [c.index for c in classes] != list(range(len(classes))):
        raise DatasetError(f"{path}: class ids must be 0..{len(classes) - 1} in order")
    if len(classes) < 2:
        raise DatasetError(f"{path}: at least two classes are needed, found {len(classes)}")
    if ignore is not None and not (len(classes) <= int(ignore) <= 255):
        raise DatasetError(f"{path}: ignore_index {ignore} must be in {len(classes)}..255")
    return ClassList(classes, None if ignore is None else int(ignore))


def _open(path: Path, mode: str) -> Image.Image:
    try:
        with Image.open(path) as image:
            image.load()
            return image.convert(mode) if mode == "RGB" else image
    except (UnidentifiedImageError, OSError) as error:
        raise DatasetError(f"{path} cannot be read as an image: {error}") from error


def _scaled(image: Image.Image, scale: float, resample: Image.Resampling) -> Image.Image:
    if scale == 1.0:
        return image
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, resample)


def read_split(root: Path, split: str, classes: ClassList, scale: float = 1.0) -> Split:
    """All image/mask pairs of one split, resized by ``scale`` (masks by nearest neighbour)."""
    if not 0.0 < scale <= 1.0:
        raise DatasetError(f"scale must be in (0, 1], got {scale}")
    image_dir, mask_dir = root / split / "images", root / split / "masks"
    for folder in (image_dir, mask_dir):
        if not folder.is_dir():
            raise DatasetError(f"folder {folder} is missing")
    image_paths = sorted(p for p in image_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not image_paths:
        raise DatasetError(f"folder {image_dir} holds no images")
    masks_by_stem = {p.stem: p for p in mask_dir.iterdir() if p.suffix.lower() == ".png"}
    allowed = set(range(len(classes.classes)))
    if classes.ignore_index is not None:
        allowed.add(classes.ignore_index)
    result = Split([], [], [])
    for image_path in image_paths:
        mask_path = masks_by_stem.get(image_path.stem)
        if mask_path is None:
            raise DatasetError(f"{image_path} has no mask {mask_dir / (image_path.stem + '.png')}")
        image = _open(image_path, "RGB")
        mask = _open(mask_path, "L")
        if mask.mode not in ("L", "P"):
            raise DatasetError(f"{mask_path} must be an 8-bit single-channel PNG, got {mask.mode}")
        if image.size != mask.size:
            raise DatasetError(
                f"{mask_path} is {mask.width}x{mask.height} but its image is "
                f"{image.width}x{image.height}"
            )
        mask_array = np.asarray(mask, dtype=np.uint8)
        unknown = set(np.unique(mask_array).tolist()) - allowed
        if unknown:
            raise DatasetError(
                f"{mask_path} has values {sorted(unknown)} that are neither class ids "
                f"0..{len(classes.classes) - 1} nor the ignore index {classes.ignore_index}"
            )
        image = _scaled(image, scale, Image.Resampling.BILINEAR)
        mask = _scaled(Image.fromarray(mask_array), scale, Image.Resampling.NEAREST)
        result.names.append(image_path.stem)
        result.images.append(np.asarray(image, dtype=np.uint8))
        result.masks.append(np.asarray(mask, dtype=np.uint8))
    return result
