"""Uploaded simulation results: checking a ``tessera simulate`` rounds.jsonl, storing,
listing and deleting it. Functions flush; the caller commits."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.dashboard.schemas import SimulationRead
from backend.validation_types import JsonRefused, load_json_limited
from core.errors import InvalidInput, NotFound
from core.models import SimulationResult

_REQUIRED = {"strategy": str, "round": int, "labeled_pixel_fraction": float, "val_miou": float}
MAX_SIMULATION_ROWS = 100_000


def parse_simulation_rows(data: bytes) -> list[dict[str, Any]]:
    """The rows of a ``tessera simulate`` rounds.jsonl; 422 naming the first bad line."""

    def refuse(detail: str) -> InvalidInput:
        return InvalidInput(detail)

    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise refuse("rounds.jsonl is not UTF-8 text.") from error
    rows: list[dict[str, Any]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = load_json_limited(line, what="the row")
        except JsonRefused as error:
            raise refuse(f"line {number}: {error}.") from error
        if not isinstance(row, dict):
            raise refuse(f"line {number}: expected a JSON object.")
        for name, kind in _REQUIRED.items():
            value: Any = row.get(name)
            ok = (
                isinstance(value, str)
                if kind is str
                else isinstance(value, int | float) and not isinstance(value, bool)
            )
            if not ok or (kind is int and int(value) != value):
                raise refuse(f"line {number}: '{name}' must be a {kind.__name__}.")
            if kind is float and not 0.0 <= float(value) <= 1.0:
                raise refuse(f"line {number}: '{name}' = {value} is outside 0..1.")
        rows.append(row)
        if len(rows) > MAX_SIMULATION_ROWS:
            raise refuse(f"more than {MAX_SIMULATION_ROWS} rows.")
    if not rows:
        raise refuse("rounds.jsonl holds no rows.")
    return rows


def summary(result: SimulationResult) -> SimulationRead:
    return SimulationRead(
        id=result.id,
        name=result.name,
        created_at=result.created_at,
        rows=len(result.rows),
        strategies=sorted({str(row["strategy"]) for row in result.rows}),
    )


def project_simulations(session: Session, project_id: int) -> list[SimulationResult]:
    return list(
        session.scalars(
            select(SimulationResult)
            .where(SimulationResult.project_id == project_id)
            .order_by(SimulationResult.id)
        )
    )


def store_simulation(
    session: Session, project_id: int, uploaded_by_id: int, name: str, data: bytes
) -> SimulationResult:
    """Checks and stores the rows of an uploaded rounds.jsonl (InvalidInput naming the
    first bad line)."""
    result = SimulationResult(
        project_id=project_id,
        name=name,
        uploaded_by_id=uploaded_by_id,
        rows=parse_simulation_rows(data),
    )
    session.add(result)
    session.flush()
    return result


def delete_simulation(session: Session, project_id: int, simulation_id: int) -> None:
    result = session.get(SimulationResult, simulation_id)
    if result is None or result.project_id != project_id:
        raise NotFound(f"No simulation {simulation_id} in this project.")
    session.delete(result)
    session.flush()
