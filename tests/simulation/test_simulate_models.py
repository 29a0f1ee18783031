"""``tessera simulate`` with the pretrained model, cached features and converged rounds."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from worker.simulation.synthetic import write_dataset

SMALL_RUN = [
    "--strategies", "dynamic,random_images,full", "--seeds", "0",
    "--rounds", "1", "--initial-images", "3", "--images-per-round", "3",
    "--superpixel-size", "12", "--batch-size", "4", "--decoder-channels", "16",
    "--mc-samples", "3", "--device", "cpu",
]  # fmt: skip


def tessera(*args: str | Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-c", "from tessera.cli import main; main()", *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, timeout=600)


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    return write_dataset(tmp_path / "data", {"train": 10, "val": 4, "test": 4}, 40, 56)


def _rows(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "rounds.jsonl").read_text().splitlines()]


def test_pretrained_model_stops_on_val_and_reports_on_test(dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = tessera(
        "simulate", "--data", dataset, "--out", out, *SMALL_RUN,
        "--iterations", "300", "--finetune-iterations", "300", "--full-iterations", "300",
        "--learning-rate", "0.05", "--eval-every", "2", "--patience", "2",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "model efficientnet_lite0" in result.stdout
    assert "4 validation and 4 test images" in result.stdout
    assert "early stopping on validation miou every 2 iterations, patience 2" in result.stdout
    assert "encoder features: 18 images" in result.stdout
    rows = _rows(out)
    assert len(rows) == 2 * 2 + 1
    for row in rows:
        assert 2 <= row["iterations"] <= 300
        assert row["iterations"] % 2 == 0 or row["iterations"] == 300
    # A learning rate this high stops improving the held-out mIoU long before 300 steps.
    assert any(row["stopped_early"] and row["iterations"] < 300 for row in rows)
    config = json.loads((out / "config.json").read_text())
    assert config["model"] == "efficientnet_lite0"
    assert config["test_split"] == "test"
    assert "iterations" in (out / "rounds.csv").read_text().splitlines()[0]


def test_without_a_test_split_training_runs_its_maximum(tmp_path: Path) -> None:
    data = write_dataset(tmp_path / "data", {"train": 10, "val": 4}, 40, 56)
    out = tmp_path / "out"
    result = tessera(
        "simulate", "--data", data, "--out", out, *SMALL_RUN,
        "--iterations", "6", "--finetune-iterations", "4", "--full-iterations", "5",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "early stopping off (no test split: mIoU is on validation)" in result.stdout
    by_strategy = {(r["strategy"], r["round"]): r["iterations"] for r in _rows(out)}
    assert by_strategy[("dynamic", 0)] == 6
    assert by_strategy[("dynamic", 1)] == 4
    assert by_strategy[("full", 0)] == 5


def test_unet_and_bad_encoder_weights(dataset: Path, tmp_path: Path) -> None:
    unet = tessera(
        "simulate", "--data", dataset, "--out", tmp_path / "unet", *SMALL_RUN,
        "--model", "unet", "--width", "4", "--depth", "2", "--crop-size", "16",
        "--iterations", "4", "--finetune-iterations", "2", "--full-iterations", "2",
    )  # fmt: skip
    assert unet.returncode == 0, unet.stderr
    assert "encoder features" not in unet.stdout
    weights = tmp_path / "broken.pth"
    weights.write_bytes(b"\x00" * 64)
    broken = tessera(
        "simulate", "--data", dataset, "--out", tmp_path / "broken", *SMALL_RUN,
        "--encoder-weights", weights,
    )  # fmt: skip
    assert broken.returncode == 2
    assert f"weights file {weights} cannot be read as torch weights" in broken.stderr
    assert "Traceback" not in broken.stderr
    assert not (tmp_path / "broken").exists()
    crops = tessera("simulate", "--data", dataset, *SMALL_RUN, "--crop-size", "16")
    assert crops.returncode == 2
    assert "--crop-size does not apply to a frozen pretrained encoder" in crops.stderr
