import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from worker.simulation.synthetic import write_dataset

# The tiny U-Net keeps these loop and report checks fast; the pretrained model's runs are
# in test_simulate_models.py.
TINY_RUN = [
    "--rounds", "2", "--initial-images", "3", "--images-per-round", "3",
    "--superpixel-size", "12", "--width", "4", "--depth", "2", "--batch-size", "4",
    "--iterations", "15", "--finetune-iterations", "8", "--full-iterations", "10",
    "--mc-samples", "3", "--device", "cpu", "--model", "unet",
]  # fmt: skip


def tessera(*args: str | Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-c", "from tessera.cli import main; main()", *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, timeout=300)


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    return write_dataset(tmp_path / "data", {"train": 12, "val": 4}, height=40, width=56)


def test_simulate_writes_rows_and_plot_and_spends_more_each_round(
    dataset: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    result = tessera(
        "simulate", "--data", dataset, "--out", out,
        "--strategies", "dynamic,static_matched,random_images,full", "--seeds", "0,1", *TINY_RUN,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in (out / "rounds.jsonl").read_text().splitlines()]
    assert len(rows) == 2 * (3 * 3 + 1)
    assert (out / "rounds.csv").read_text().count("\n") == len(rows) + 1
    assert (out / "miou_vs_pixels.png").stat().st_size > 10_000
    for seed in (0, 1):
        for strategy in ("dynamic", "static_matched", "random_images"):
            fractions = [
                r["labeled_pixel_fraction"]
                for r in sorted(rows, key=lambda r: r["round"])
                if r["strategy"] == strategy and r["seed"] == seed
            ]
            assert len(fractions) == 3
            assert fractions[0] < fractions[1] < fractions[2] <= 1.0
    full = [r for r in rows if r["strategy"] == "full"]
    assert all(r["labeled_pixel_fraction"] == 1.0 for r in full)
    assert all(0.0 <= r["val_miou"] <= 1.0 for r in rows)
    dynamic = [r for r in rows if r["strategy"] == "dynamic" and r["round"] > 0]
    assert all(r["superpixels_per_image"] for r in dynamic)
    assert "| dynamic | 2 | 2 |" in result.stdout


def _corrupt(dataset: Path, fault: str) -> None:
    masks = dataset / "train" / "masks"
    if fault == "missing folder":
        for path in masks.iterdir():
            path.unlink()
        masks.rmdir()
    elif fault == "size mismatch":
        Image.fromarray(np.zeros((10, 10), np.uint8)).save(masks / "scene_0003.png")
    elif fault == "mask values":
        Image.fromarray(np.full((40, 56), 9, np.uint8)).save(masks / "scene_0002.png")
    elif fault == "unreadable":
        (dataset / "train" / "images" / "scene_0001.png").write_bytes(b"not a png at all")
    elif fault == "no classes":
        (dataset / "classes.json").unlink()


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        ("missing folder", "train/masks is missing"),
        ("size mismatch", "scene_0003.png is 10x10 but its image is 56x40"),
        ("mask values", "scene_0002.png has values [9]"),
        ("unreadable", "scene_0001.png cannot be read as an image"),
        ("no classes", "classes.json is missing"),
    ],
)
def test_simulate_bad_input_exits_2_with_a_message(
    dataset: Path, tmp_path: Path, fault: str, message: str
) -> None:
    _corrupt(dataset, fault)
    result = tessera("simulate", "--data", dataset, "--out", tmp_path / "out", *TINY_RUN)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()


def test_simulate_refuses_unknown_strategy_and_static_matched_alone(
    dataset: Path, tmp_path: Path
) -> None:
    unknown = tessera("simulate", "--data", dataset, "--strategies", "best", *TINY_RUN)
    assert unknown.returncode == 2
    assert "unknown strategies ['best']" in unknown.stderr
    alone = tessera("simulate", "--data", dataset, "--strategies", "static_matched", *TINY_RUN)
    assert alone.returncode == 2
    assert "static_matched needs dynamic" in alone.stderr
