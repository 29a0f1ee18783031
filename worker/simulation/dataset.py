"""Reading a labeled dataset in the plain "image folder + mask folder" layout.

    ROOT/classes.json            {"ignore_index": 11, "classes": [{"id", "name", "color"}, ...]}
    ROOT/SPLIT/images/NAME.jpg   RGB (any format Pillow reads)
    ROOT/SPLIT/masks/NAME.png    8-bit class ids, same size, same stem; or RGB colour
                                 masks in the classes' colours (optional "ignore_color"
                                 in classes.json marks void pixels)

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
    ignore_color: tuple[int, int, int] | None = None

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
        raw_ignore_color = document.get("ignore_color")
        ignore_color = None if raw_ignore_color is None else tuple(int(v) for v in raw_ignore_color)
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as error:
        raise DatasetError(f"{path} is not a valid class list: {error}") from error
    if [c.index for c in classes] != list(range(len(classes))):
        raise DatasetError(f"{path}: class ids must be 0..{len(classes) - 1} in order")
    if len(classes) < 2:
        raise DatasetError(f"{path}: at least two classes are needed, found {len(classes)}")
    if ignore is not None and not (len(classes) <= int(ignore) <= 255):
        raise DatasetError(f"{path}: ignore_index {ignore} must be in {len(classes)}..255")
    for colour in [c.color for c in classes] + ([ignore_color] if ignore_color else []):
        if len(colour) != 3 or not all(0 <= v <= 255 for v in colour):
            raise DatasetError(f"{path}: colour {list(colour)} is not an RGB triple of 0..255")
    if ignore_color is not None and ignore is None:
        ignore = 255  # void colour pixels need an index the loss ignores
    return ClassList(
        classes,
        None if ignore is None else int(ignore),
        None if ignore_color is None else (ignore_color[0], ignore_color[1], ignore_color[2]),
    )


def colour_mask_to_ids(rgb: NDArray[np.uint8], classes: ClassList, path: Path) -> NDArray[np.uint8]:
    """(H, W, 3) colour mask -> (H, W) class ids; ``ignore_color`` -> the ignore index.

    Raises DatasetError naming the file and the colours classes.json does not list.
    """
    palette = {c.color: c.index for c in classes.classes}
    if len(palette) != len(classes.classes):
        raise DatasetError(f"{path} is a colour mask but classes.json repeats a class colour")
    if classes.ignore_color is not None:
        if classes.ignore_color in palette:
            raise DatasetError(
                f"{path}: ignore_color {list(classes.ignore_color)} is a class colour"
            )
        assert classes.ignore_index is not None  # read_classes sets one with ignore_color
        palette[classes.ignore_color] = classes.ignore_index
    keys = (rgb[..., 0].astype(np.int32) << 16) | (rgb[..., 1].astype(np.int32) << 8) | rgb[..., 2]
    unique, inverse = np.unique(keys.ravel(), return_inverse=True)
    colours = [((int(k) >> 16) & 255, (int(k) >> 8) & 255, int(k) & 255) for k in unique]
    unknown = [c for c in colours if c not in palette]
    if unknown:
        shown = ", ".join(str(list(c)) for c in unknown[:5])
        more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
        raise DatasetError(
            f"{path} has colours {shown}{more} that classes.json lists for no class "
            "(nor as ignore_color)"
        )
    lookup = np.array([palette[c] for c in colours], dtype=np.uint8)
    return lookup[inverse].reshape(keys.shape)


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
        if mask.mode not in ("L", "P", "RGB", "RGBA"):
            raise DatasetError(
                f"{mask_path} must be an 8-bit class-id PNG or an RGB colour mask, "
                f"got mode {mask.mode}"
            )
        if image.size != mask.size:
            raise DatasetError(
                f"{mask_path} is {mask.width}x{mask.height} but its image is "
                f"{image.width}x{image.height}"
            )
        if mask.mode in ("RGB", "RGBA"):
            rgb = np.asarray(mask.convert("RGB"), dtype=np.uint8)
            mask_array = colour_mask_to_ids(rgb, classes, mask_path)
        else:
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


def hold_out(split: Split, fraction: float, seed: int) -> tuple[Split, Split]:
    """Split ``split`` at random into (rest, held out) with round(fraction * N) images
    held out (at least one, and at least one left), reproducible from ``seed``."""
    if not 0.0 < fraction < 1.0:
        raise DatasetError(f"the held-out fraction must be in (0, 1), got {fraction}")
    count = len(split.names)
    if count < 2:
        raise DatasetError(f"cannot hold out part of a split of {count} image(s)")
    held = min(max(1, round(fraction * count)), count - 1)
    order = np.random.default_rng(seed).permutation(count)
    held_out = sorted(order[:held].tolist())
    rest = sorted(order[held:].tolist())

    def subset(indices: list[int]) -> Split:
        return Split(
            [split.names[i] for i in indices],
            [split.images[i] for i in indices],
            [split.masks[i] for i in indices],
        )

    return subset(rest), subset(held_out)
