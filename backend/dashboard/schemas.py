"""The lead dashboard's figures as the API shows them (``GET .../dashboard`` and its parts)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from backend.dashboard.prefill import PrefillEffort
from backend.rounds.schemas import JobRead
from core.models import RoundStatus

WarningLevel = Literal["none", "ok", "warning", "critical", "exhausted"]
BudgetUnit = Literal["pixels", "superpixels", "images", "hours"]


class BudgetLine(BaseModel):
    """One unit of the budget. ``set`` is None when the project sets no budget in it."""

    unit: BudgetUnit
    set: float | None
    spent: float
    remaining: float | None
    fraction_spent: float | None = Field(description="spent / set, None without a budget.")
    equivalent: bool = Field(
        description="True when ``set`` is converted from the pixel budget (superpixels, "
        "images) rather than set by the lead."
    )


class Budget(BaseModel):
    model_config = ConfigDict(json_schema_serialization_defaults_required=True)

    lines: list[BudgetLine]
    level: WarningLevel = Field(
        description="From the largest spent fraction of the pixel and hour budgets: ok below "
        "75 %, warning from 75 %, critical from 90 %, exhausted at 100 %; none without budget."
    )
    warn_at: float = 0.75
    critical_at: float = 0.9
    pool_images: int
    pool_pixels: int = Field(description="Pixels of every pool image (full labeling).")
    mean_superpixel_pixels: float | None = Field(
        description="Mean pixels per superpixel over the pool's current maps."
    )
    note: str


class CurvePoint(BaseModel):
    round_number: int
    model_id: int
    labeled_pixels: int = Field(description="Pixels labeled in earlier rounds (trained on).")
    labeled_fraction: float = Field(description="labeled_pixels / pool pixels.")
    miou: float


class Projection(BaseModel):
    method: str
    a: float
    b: float
    at_pixels: int = Field(description="The budget's pixels, or the whole pool without one.")
    miou: float = Field(description="a + b * ln(at_pixels), clamped to 0..1.")
    points_used: int


class SimulatedPoint(BaseModel):
    round: int
    labeled_fraction: float
    labeled_pixels: float = Field(description="labeled_fraction x this project's pool pixels.")
    miou_mean: float
    miou_sd: float
    seeds: int


class SimulatedCurve(BaseModel):
    simulation_id: int
    simulation_name: str
    strategy: str
    points: list[SimulatedPoint]


class LearningCurve(BaseModel):
    points: list[CurvePoint]
    projection: Projection | None = Field(
        description="None with fewer than two points at distinct pixel counts."
    )
    simulated: list[SimulatedCurve]
    pool_pixels: int


class RoundRow(BaseModel):
    model_config = ConfigDict(json_schema_serialization_defaults_required=True)

    id: int
    number: int
    strategy: str
    status: RoundStatus
    created_at: datetime
    finished_at: datetime | None
    images_queried: int
    superpixels_queried: int
    superpixels_per_image: list[int] = Field(
        description="Superpixels queried per picked image (the histogram's data)."
    )
    queries_done: int
    labeled_pixels: int
    labeled_superpixels: int
    seconds: float
    model_id: int | None
    miou: float | None
    per_class_iou: list[float | None] | None
    model_kind: str | None = Field(
        default=None, description="The round model's network: unet or a pretrained encoder."
    )
    model_encoder_zoom: int | None = Field(
        default=None,
        description="The round model's encoder zoom (2: images upsampled 2x for the encoder).",
    )
    iterations: int | None = Field(
        default=None, description="Training iterations the round's model actually ran."
    )
    max_iterations: int | None = Field(
        default=None, description="The cap; fewer iterations mean early stopping ended it."
    )
    stopped_early: bool | None = None


class ClassShare(BaseModel):
    index: int
    name: str
    colour: str
    labeled_pixels: int
    labeled_share: float
    validation_pixels: int
    validation_share: float
    starved: bool


class ClassBalance(BaseModel):
    classes: list[ClassShare]
    labeled_pixels: int
    validation_pixels: int
    validation_images: int
    rule: str


class TeamMember(BaseModel):
    user_id: int
    email: str
    name: str
    role: str | None = Field(description="None for someone no longer a member (or the oracle).")
    submissions: int
    superpixels: int
    pixels: int
    hours: float
    superpixels_per_hour: float | None
    pixels_per_hour: float | None
    conflicts: int
    conflict_share: float = Field(description="conflicts / (conflicts + accepted saves).")


class CurrentRound(BaseModel):
    id: int
    number: int
    status: RoundStatus
    queries: int
    queries_done: int


class Jobs(BaseModel):
    jobs: list[JobRead]
    current_round: CurrentRound | None
    can_start_round: bool
    oracle_available: bool = Field(
        description="The current round is labeling and has open queries on images with "
        "ground truth."
    )


class Dashboard(BaseModel):
    budget: Budget
    learning_curve: LearningCurve
    rounds: list[RoundRow]
    class_balance: ClassBalance
    team: list[TeamMember]
    jobs: Jobs
    prefill: PrefillEffort


class SimulationRead(BaseModel):
    id: int
    name: str
    created_at: datetime
    rows: int
    strategies: list[str]
