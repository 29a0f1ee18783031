import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from worker.simulation.dataset import DatasetError, hold_out, read_classes, read_split
from worker.simulation.synthetic import CLASSES, write_dataset


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    return write_dataset(tmp_path / "data", {"train": 6}, height=20, width=24)


def _to_colour(root: Path, void: tuple[int, int, int] | None) -> list[np.ndarray]:
    """Rewrite every train mask as an RGB colour mask; returns the original id masks."""
    palette = np.zeros((256, 3), np.uint8)
    for entry in CLASSES:
        palette[int(str(entry["id"]))] = np.array(entry["color"], np.uint8)
    if void is not None:
        palette[255] = void
    originals = []
    for path in sorted((root / "train" / "masks").iterdir()):
        ids = np.asarray(Image.open(path))
        originals.append(ids)
        Image.fromarray(palette[ids]).save(path)
    return originals


def test_colour_masks_map_to_class_ids_and_void_colour_to_ignore(dataset: Path) -> None:
    originals = _to_colour(dataset, void=(0, 0, 0))
    document = json.loads((dataset / "classes.json").read_text())
    document["ignore_color"] = [0, 0, 0]
    (dataset / "classes.json").write_text(json.dumps(document))
    classes = read_classes(dataset)
    split = read_split(dataset, "train", classes)
    for read, original in zip(split.masks, originals, strict=True):
        np.testing.assert_array_equal(read, original)  # ids, and 255 where the void was


def test_unknown_colour_is_a_clear_error(dataset: Path) -> None:
    _to_colour(dataset, void=(1, 2, 3))  # void colour that classes.json does not list
    with pytest.raises(DatasetError, match=r"scene_0000.png has colours \[1, 2, 3\] that"):
        read_split(dataset, "train", read_classes(dataset))


def test_repeated_class_colour_is_refused_for_colour_masks(dataset: Path) -> None:
    _to_colour(dataset, void=None)
    document = json.loads((dataset / "classes.json").read_text())
    document["classes"][1]["color"] = document["classes"][0]["color"]
    (dataset / "classes.json").write_text(json.dumps(document))
    with pytest.raises(DatasetError, match="repeats a class colour"):
        read_split(dataset, "train", read_classes(dataset))


def test_hold_out_is_reproducible_disjoint_and_complete(dataset: Path) -> None:
    split = read_split(dataset, "train", read_classes(dataset))
    rest, held = hold_out(split, 0.34, seed=3)
    again_rest, again_held = hold_out(split, 0.34, seed=3)
    assert held.names == again_held.names and rest.names == again_rest.names
    assert len(held.names) == 2 and len(rest.names) == 4
    assert sorted(rest.names + held.names) == split.names
    other = [hold_out(split, 0.34, seed=s)[1].names for s in range(6)]
    assert len({tuple(n) for n in other}) > 1
    index = split.names.index(held.names[0])
    np.testing.assert_array_equal(held.masks[0], split.masks[index])
    with pytest.raises(DatasetError, match="fraction"):
        hold_out(split, 1.0, seed=0)
