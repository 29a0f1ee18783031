"""Rounds, their queries, background jobs and trained models as the API shows them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from core.models import JobStatus, QueryStatus, RoundStatus


class RoundRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    number: int
    strategy: str
    status: RoundStatus
    spent_pixels: int
    spent_superpixels: int
    spent_seconds: float
    created_at: datetime
    finished_at: datetime | None


class QueryRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    image_id: int
    superpixel_map_id: int
    superpixel_ids: list[int]
    superpixel_scores: list[float]
    image_score: float | None
    status: QueryStatus
    assignee_id: int | None
    lease_expires_at: datetime | None
    completed_at: datetime | None


class RoundDetail(RoundRead):
    queries: list[QueryRead]
    model_ids: list[int]


class JobRead(BaseModel):
    model_config = ConfigDict(
        from_attributes=True, json_schema_serialization_defaults_required=True
    )

    id: int
    project_id: int | None
    round_id: int | None
    kind: str
    status: JobStatus
    progress: float
    message: str
    error: str | None
    celery_task_id: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    eta_at: datetime | None = None
    heartbeat_at: datetime | None = None
    worker: str | None = None
    takeovers: int = 0


class ModelRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    round_id: int | None
    architecture: str
    metrics: dict[str, Any]
    created_at: datetime


class RoundStarted(BaseModel):
    round: RoundRead
    job: JobRead
