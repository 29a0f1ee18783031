"""Model checkpoints in the ``models`` table: state-dict bytes plus the config that built them."""

from __future__ import annotations

import io
from dataclasses import asdict
from typing import Any

import torch
from sqlalchemy import select
from sqlalchemy.orm import Session, undefer

from core.models import ModelArchitecture, ModelCheckpoint, Project
from core.settings import Settings
from worker.engine.encoders import encoder_spec
from worker.engine.model import ModelConfig, SegmentationModel, build_model, encoder_weights_path

ARCHITECTURE = "unet"


def model_config(
    settings: Settings, num_classes: int, project: Project | None = None
) -> ModelConfig:
    """The network a project trains: its ``model_architecture`` (a U-Net sized by
    ``TESSERA_MODEL_WIDTH``/``_DEPTH``, or a frozen pretrained encoder with its weights and
    ``encoder_zoom``). Checkpoints match it field for field (``latest_checkpoint``), so a
    model trained at another zoom, whose decoder takes other maps, is never fine-tuned."""
    if project is None or project.model_architecture == ModelArchitecture.unet:
        return ModelConfig(
            num_classes=num_classes, width=settings.model_width, depth=settings.model_depth
        )
    return ModelConfig(
        num_classes=num_classes,
        kind=project.model_architecture.value,
        encoder_weights=project.encoder_weights_path or None,
        encoder_zoom=project.encoder_zoom,
    )


def check_encoder_weights(config: ModelConfig) -> None:
    """Loads the config's encoder weights with ``weights_only=True``; ValueError naming the
    file and the fault when torch refuses them. A U-Net has none."""
    if not config.pretrained:
        return
    spec = encoder_spec(config.kind)
    spec.load_weights(spec.build(), encoder_weights_path(config))


def state_bytes(model: SegmentationModel) -> bytes:
    buffer = io.BytesIO()
    torch.save({name: tensor.cpu() for name, tensor in model.state_dict().items()}, buffer)
    return buffer.getvalue()


def config_of(checkpoint: ModelCheckpoint) -> ModelConfig | None:
    stored = checkpoint.metrics.get("model_config")
    return ModelConfig(**stored) if isinstance(stored, dict) else None


def config_metrics(config: ModelConfig) -> dict[str, Any]:
    return {"model_config": asdict(config)}


def load_model(checkpoint: ModelCheckpoint, device: torch.device) -> SegmentationModel:
    """The checkpoint's network on ``device`` (its bytes are loaded here)."""
    config = config_of(checkpoint)
    if config is None:
        raise ValueError(f"model {checkpoint.id} does not record its configuration")
    model = build_model(config)
    state = torch.load(io.BytesIO(checkpoint.checkpoint), map_location="cpu", weights_only=True)
    model.load_state_dict(state)
    return model.to(device)


def latest_checkpoint(
    session: Session, project_id: int, config: ModelConfig | None = None
) -> ModelCheckpoint | None:
    """The project's newest model (with that configuration, when given); its bytes load on
    first access."""
    rows = session.scalars(
        select(ModelCheckpoint)
        .where(ModelCheckpoint.project_id == project_id)
        .order_by(ModelCheckpoint.id.desc())
    )
    for row in rows:
        if config is None or config_of(row) == config:
            return row
    return None


def round_checkpoint(session: Session, round_id: int) -> ModelCheckpoint | None:
    return session.scalar(
        select(ModelCheckpoint)
        .where(ModelCheckpoint.round_id == round_id)
        .order_by(ModelCheckpoint.id.desc())
        .limit(1)
        .options(undefer(ModelCheckpoint.checkpoint))
    )
