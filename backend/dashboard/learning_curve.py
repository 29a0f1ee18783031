"""The learning-curve part: validation mIoU per round's model against the pixels it was
trained on, a log fit projected to the budget, and uploaded simulation curves."""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.dashboard.budget import pool_size
from backend.dashboard.schemas import (
    CurvePoint,
    LearningCurve,
    Projection,
    SimulatedCurve,
    SimulatedPoint,
)
from core.models import ModelCheckpoint, Project, Round, SimulationResult

PROJECTION_METHOD = (
    "least-squares fit of mIoU = a + b·ln(labeled pixels) over the rounds' validation mIoU, "
    "evaluated at the pixel budget (or the whole pool without one), clamped to 0..1"
)


def fit_log_curve(pixels: list[float], miou: list[float]) -> tuple[float, float] | None:
    """Least squares of miou = a + b * ln(pixels); None without two distinct pixel counts."""
    points = [(math.log(x), y) for x, y in zip(pixels, miou, strict=True) if x > 0]
    if len({x for x, _ in points}) < 2:
        return None
    xs = np.array([x for x, _ in points])
    ys = np.array([y for _, y in points])
    b = float(((xs - xs.mean()) * (ys - ys.mean())).sum() / ((xs - xs.mean()) ** 2).sum())
    a = float(ys.mean() - b * xs.mean())
    return a, b


def _cumulative_before(session: Session, project_id: int) -> dict[int, int]:
    """Round number -> pixels labeled in the rounds numbered below it."""
    rows = session.execute(
        select(Round.number, Round.spent_pixels)
        .where(Round.project_id == project_id)
        .order_by(Round.number)
    ).all()
    before: dict[int, int] = {}
    total = 0
    for number, spent in rows:
        before[int(number)] = total
        total += int(spent)
    return before


def _simulated_curves(session: Session, project_id: int, pool_pixels: int) -> list[SimulatedCurve]:
    curves: list[SimulatedCurve] = []
    results = session.scalars(
        select(SimulationResult)
        .where(SimulationResult.project_id == project_id)
        .order_by(SimulationResult.id)
    )
    for result in results:
        groups: dict[str, dict[int, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
        for row in result.rows:
            groups[str(row["strategy"])][int(row["round"])].append(row)
        for strategy, by_round in groups.items():
            points = []
            for number in sorted(by_round):
                rows = by_round[number]
                fraction = float(np.mean([float(r["labeled_pixel_fraction"]) for r in rows]))
                miou = np.array([float(r["val_miou"]) for r in rows])
                points.append(
                    SimulatedPoint(
                        round=number,
                        labeled_fraction=fraction,
                        labeled_pixels=fraction * pool_pixels,
                        miou_mean=float(miou.mean()),
                        miou_sd=float(miou.std(ddof=1)) if len(miou) > 1 else 0.0,
                        seeds=len(miou),
                    )
                )
            points.sort(key=lambda p: p.labeled_fraction)
            curves.append(
                SimulatedCurve(
                    simulation_id=result.id,
                    simulation_name=result.name,
                    strategy=strategy,
                    points=points,
                )
            )
    return curves


def learning_curve(session: Session, project: Project) -> LearningCurve:
    """Validation mIoU of each round's model against the pixels it was trained on (the
    pixels labeled in earlier rounds: a round's model is trained before its queries)."""
    _, pool_pixels = pool_size(session, project.id)
    before = _cumulative_before(session, project.id)
    rows = session.execute(
        select(ModelCheckpoint.id, ModelCheckpoint.metrics, Round.number)
        .join(Round, Round.id == ModelCheckpoint.round_id)
        .where(ModelCheckpoint.project_id == project.id)
        .order_by(Round.number, ModelCheckpoint.id)
    ).all()
    points = []
    for model_id, metrics, number in rows:
        miou = (metrics or {}).get("miou")
        if miou is None:
            continue
        labeled = before.get(int(number), 0)
        points.append(
            CurvePoint(
                round_number=int(number),
                model_id=int(model_id),
                labeled_pixels=labeled,
                labeled_fraction=labeled / pool_pixels if pool_pixels else 0.0,
                miou=float(miou),
            )
        )
    projection = None
    fit = fit_log_curve([p.labeled_pixels for p in points], [p.miou for p in points])
    target = project.budget_pixels or pool_pixels
    if fit is not None and target > 0:
        a, b = fit
        projection = Projection(
            method=PROJECTION_METHOD,
            a=a,
            b=b,
            at_pixels=int(target),
            miou=min(max(a + b * math.log(target), 0.0), 1.0),
            points_used=sum(1 for p in points if p.labeled_pixels > 0),
        )
    return LearningCurve(
        points=points,
        projection=projection,
        simulated=_simulated_curves(session, project.id, pool_pixels),
        pool_pixels=pool_pixels,
    )
