"""The rounds part: per round what it asked (per picked image), what it got, its model."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.dashboard.schemas import RoundRow
from core.models import ModelCheckpoint, Project, Query, QueryStatus, Round


def rounds(session: Session, project: Project) -> list[RoundRow]:
    """Every round with what it asked (per picked image), what it got, and its model."""
    round_rows = list(
        session.scalars(select(Round).where(Round.project_id == project.id).order_by(Round.number))
    )
    ids = [r.id for r in round_rows]
    queries: dict[int, list[tuple[list[int], QueryStatus]]] = defaultdict(list)
    for round_id, superpixel_ids, query_status in session.execute(
        select(Query.round_id, Query.superpixel_ids, Query.status)
        .where(Query.round_id.in_(ids))
        .order_by(Query.id)
    ):
        queries[round_id].append((list(superpixel_ids), query_status))
    models: dict[int, tuple[int, dict[str, Any]]] = {}
    for model_id, round_id, metrics in session.execute(
        select(ModelCheckpoint.id, ModelCheckpoint.round_id, ModelCheckpoint.metrics)
        .where(ModelCheckpoint.round_id.in_(ids))
        .order_by(ModelCheckpoint.id)
    ):
        models[round_id] = (model_id, metrics or {})  # the newest model of a round wins
    out = []
    for round_ in round_rows:
        asked = queries[round_.id]
        model = models.get(round_.id)
        metrics = model[1] if model else {}
        model_config = metrics.get("model_config") or {}
        out.append(
            RoundRow(
                id=round_.id,
                number=round_.number,
                strategy=round_.strategy,
                status=round_.status,
                created_at=round_.created_at,
                finished_at=round_.finished_at,
                images_queried=len(asked),
                superpixels_queried=sum(len(s) for s, _ in asked),
                superpixels_per_image=[len(s) for s, _ in asked],
                queries_done=sum(1 for _, q in asked if q == QueryStatus.done),
                labeled_pixels=round_.spent_pixels,
                labeled_superpixels=round_.spent_superpixels,
                seconds=round_.spent_seconds,
                model_id=model[0] if model else None,
                miou=metrics.get("miou"),
                per_class_iou=metrics.get("per_class_iou"),
                model_kind=model_config.get("kind", "unet") if model else None,
                # Models stored before the zoom existed ran at 1.
                model_encoder_zoom=model_config.get("encoder_zoom", 1) if model else None,
                iterations=metrics.get("iterations"),
                max_iterations=metrics.get("max_iterations"),
                stopped_early=metrics.get("stopped_early"),
            )
        )
    return out
