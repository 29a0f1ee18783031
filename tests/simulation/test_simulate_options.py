"""tessera simulate's options for fair comparisons and other datasets (issue 11 items 4-6)."""

import json
import shutil
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tests.simulation.test_simulate_cli import TINY_RUN, tessera
from worker.engine.superpixels import compute_superpixels
from worker.simulation.dataset import read_classes, read_split
from worker.simulation.loop import QueryRow, SeedRun, SimulationConfig, Validation
from worker.simulation.synthetic import CLASSES, write_dataset


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    return write_dataset(tmp_path / "data", {"train": 12, "val": 4}, height=40, width=56)


def test_static_matched_spends_dynamic_pixels_within_one_superpixel_per_image(
    dataset: Path,
) -> None:
    # In process (no CLI start-up): the loop's own rounds, with the tiny U-Net.
    classes = read_classes(dataset)
    pool, held = read_split(dataset, "train", classes), read_split(dataset, "val", classes)
    superpixels = [compute_superpixels(image, 12, "slic") for image in pool.images]
    config = SimulationConfig(
        strategies=("dynamic", "static_matched"), rounds=2, initial_images=3,
        images_per_round=3, superpixel_size=12, mc_samples=3, model="unet", width=4, depth=2,
        batch_size=4, initial_iterations=15, finetune_iterations=8,
    )  # fmt: skip
    validation = Validation(held.images, held.masks, len(classes.classes), classes.ignore_index)
    run = SeedRun(
        pool.images, pool.masks, superpixels, validation, config, 0, torch.device("cpu"),
        image_names=pool.names,
    )  # fmt: skip
    run.run()
    largest = {
        name: int(np.bincount(ids.ravel()).max())
        for name, ids in zip(pool.names, superpixels, strict=True)
    }
    spent: dict[tuple[str, int], list[QueryRow]] = defaultdict(list)
    for query in run.queries:
        spent[(query.strategy, query.round)].append(query)
        assert 0 < query.superpixels_asked <= query.superpixels_open <= query.superpixels_total
        assert query.pixel_share == pytest.approx(query.pixels_asked / query.pixels_open)
    for strategy in config.strategies:  # round 0: the same random images, asked in full
        initial = spent[(strategy, 0)]
        assert len(initial) == config.initial_images
        assert all(q.pixel_share == 1.0 and q.pixels_asked == q.pixels_total for q in initial)
        assert [q.image for q in initial] == [q.image for q in spent[("dynamic", 0)]]
    for round_number in (1, 2):
        dynamic, matched = spent[("dynamic", round_number)], spent[("static_matched", round_number)]
        assert len(matched) == len(dynamic) > 0
        difference = sum(q.pixels_asked for q in matched) - sum(q.pixels_asked for q in dynamic)
        assert abs(difference) <= max(largest[q.image] for q in matched)
        # Each image near an even share of dynamic's round (one superpixel either way,
        # unless it had fewer open pixels than that share).
        share = sum(q.pixels_asked for q in dynamic) / len(dynamic)
        for query in matched:
            if query.pixels_open > share + largest[query.image]:
                assert abs(query.pixels_asked - share) <= 2 * largest[query.image]


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
    assert "simulate: 9 pool, 3 validation and 0 test images" in result.stdout
    assert "estimate: about" in result.stdout and "warning:" not in result.stdout
    assert "At equal labeled pixels" in result.stdout
    config = json.loads((out / "config.json").read_text())
    assert config["image_score"] == "foreground"
    assert config["background_classes"] == [0, 1]
    assert config["class_balance"] is True
    queries = [json.loads(line) for line in (out / "queries.jsonl").read_text().splitlines()]
    assert queries and all(q["image"].startswith("scene_") for q in queries)


def test_gpu_sized_settings_on_a_cpu_warn_with_an_eta_before_the_run(
    dataset: Path, tmp_path: Path
) -> None:
    # 2 million initial iterations: the warning must come before any of them run.
    args = [a if a != "15" else "2000000" for a in TINY_RUN]
    command = [sys.executable, "-c", "from tessera.cli import main; main()", "simulate"]
    command += ["--data", str(dataset), "--out", str(tmp_path / "out"), *args]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    lines: list[str] = []
    deadline = time.monotonic() + 240
    try:
        assert process.stdout is not None
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line or line.startswith("warning:"):
                lines.append(line)
                break
            lines.append(line)
    finally:
        process.kill()
        process.wait()
    estimate = next(line for line in lines if line.startswith("estimate: about"))
    assert " h " in estimate  # hours of training
    assert lines[-1].startswith("warning: these settings look sized for a GPU"), lines
    rounds = tmp_path / "out" / "rounds.jsonl"
    assert not rounds.exists() or rounds.read_text() == ""  # no round ran before the warning
