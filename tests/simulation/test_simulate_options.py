"""tessera simulate's options for fair comparisons and other datasets (issue 11 items 4-6)."""

import json
import shutil
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.simulation.test_simulate_cli import TINY_RUN, tessera
from worker.engine.superpixels import compute_superpixels
from worker.simulation.synthetic import CLASSES, write_dataset


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    return write_dataset(tmp_path / "data", {"train": 12, "val": 4}, height=40, width=56)


def test_static_matched_spends_dynamic_pixels_within_one_superpixel_per_image(
    dataset: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    result = tessera(
        "simulate", "--data", dataset, "--out", out,
        "--strategies", "dynamic,static_matched,static", *TINY_RUN,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    queries = [json.loads(line) for line in (out / "queries.jsonl").read_text().splitlines()]
    assert (out / "queries.csv").read_text().count("\n") == len(queries) + 1
    largest = {}  # the biggest superpixel of each image, as simulate computed them
    for path in sorted((dataset / "train" / "images").iterdir()):
        ids = compute_superpixels(np.asarray(Image.open(path).convert("RGB")), 12, "slic")
        largest[path.stem] = int(np.bincount(ids.ravel()).max())
    spent: dict[tuple[str, int], list[dict[str, object]]] = defaultdict(list)
    for query in queries:
        spent[(query["strategy"], query["round"])].append(query)
        assert 0 < query["superpixels_asked"] <= query["superpixels_open"]
        assert query["superpixels_open"] <= query["superpixels_total"]
        assert query["pixel_share"] == pytest.approx(query["pixels_asked"] / query["pixels_open"])
    for round_number in (1, 2):
        dynamic, matched = spent[("dynamic", round_number)], spent[("static_matched", round_number)]
        assert len(matched) == len(dynamic) > 0
        difference = sum(int(str(q["pixels_asked"])) for q in matched) - sum(
            int(str(q["pixels_asked"])) for q in dynamic
        )
        assert abs(difference) <= max(largest[str(q["image"])] for q in matched)
    assert "At equal labeled pixels" in result.stdout
    assert "| static_matched |" in result.stdout
    assert (out / "equal_pixels.csv").is_file() and (out / "auc.csv").is_file()


def _colour_masks_train_only(root: Path) -> None:
    """Rewrite train masks as colour masks (void black) and drop the val split."""
    palette = np.zeros((256, 3), np.uint8)
    for entry in CLASSES:
        palette[int(str(entry["id"]))] = np.array(entry["color"], np.uint8)
    for path in (root / "train" / "masks").iterdir():
        Image.fromarray(palette[np.asarray(Image.open(path))]).save(path)
    document = json.loads((root / "classes.json").read_text())
    document["ignore_color"] = [0, 0, 0]
    (root / "classes.json").write_text(json.dumps(document))
    shutil.rmtree(root / "val")


def test_simulate_train_only_colour_masks_with_held_out_split_and_foreground_score(
    dataset: Path, tmp_path: Path
) -> None:
    _colour_masks_train_only(dataset)
    missing = tessera("simulate", "--data", dataset, "--out", tmp_path / "x", *TINY_RUN)
    assert missing.returncode == 2
    assert "has no 'val' split" in missing.stderr and "--val-fraction" in missing.stderr
    unknown = tessera(
        "simulate", "--data", dataset, "--val-fraction", "0.25", "--image-score", "foreground",
        "--background-classes", "sky,grass", *TINY_RUN,
    )  # fmt: skip
    assert unknown.returncode == 2
    assert "'grass' is neither a class name nor an id" in unknown.stderr
    out = tmp_path / "out"
    result = tessera(
        "simulate", "--data", dataset, "--out", out, "--val-fraction", "0.25", "--split-seed", "1",
        "--image-score", "foreground", "--background-classes", "sky,1", "--class-balance",
        "--strategies", "dynamic", *TINY_RUN,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "simulate: 9 pool and 3 validation images" in result.stdout
    config = json.loads((out / "config.json").read_text())
    assert config["image_score"] == "foreground"
    assert config["background_classes"] == [0, 1]
    assert config["class_balance"] is True
    queries = [json.loads(line) for line in (out / "queries.jsonl").read_text().splitlines()]
    assert queries and all(q["image"].startswith("scene_") for q in queries)
