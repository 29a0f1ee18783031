"""The budget part: set, spent and remaining pixels, superpixels, images and hours.

Cost accounting follows docs/DESIGN.md §1.7: rounds carry what their accepted saves spent
(``rounds.spent_pixels`` = pixels newly labeled, ``spent_superpixels`` = superpixels of
queries marked done, ``spent_seconds`` = the annotators' recorded seconds), and the
worker's remaining pixel budget is computed from the same sums.
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from backend.dashboard.schemas import Budget, BudgetLine, BudgetUnit, WarningLevel
from core.models import Annotation, Image, Project, Round, Split, SuperpixelMap
from core.superpixel_maps import is_current_map

WARN_AT = 0.75
CRITICAL_AT = 0.9


def pool_size(session: Session, project_id: int) -> tuple[int, int]:
    """(pool images, their pixels)."""
    count, pixels = session.execute(
        select(func.count(Image.id), func.coalesce(func.sum(Image.width * Image.height), 0)).where(
            Image.project_id == project_id, Image.split == Split.pool
        )
    ).one()
    return int(count), int(pixels)


def _round_sums(session: Session, project_id: int) -> tuple[int, int, float]:
    pixels, superpixels, seconds = session.execute(
        select(
            func.coalesce(func.sum(Round.spent_pixels), 0),
            func.coalesce(func.sum(Round.spent_superpixels), 0),
            func.coalesce(func.sum(Round.spent_seconds), 0.0),
        ).where(Round.project_id == project_id)
    ).one()
    return int(pixels), int(superpixels), float(seconds)


def _line(
    unit: BudgetUnit, budget: float | None, spent: float, *, equivalent: bool = False
) -> BudgetLine:
    """One budget line; without a budget only ``spent`` is known."""
    if budget is None:
        return BudgetLine(
            unit=unit,
            set=None,
            spent=spent,
            remaining=None,
            fraction_spent=None,
            equivalent=equivalent,
        )
    return BudgetLine(
        unit=unit,
        set=budget,
        spent=spent,
        remaining=max(budget - spent, 0.0),
        fraction_spent=spent / budget if budget > 0 else None,
        equivalent=equivalent,
    )


def warning_level(fractions: list[float]) -> WarningLevel:
    if not fractions:
        return "none"
    worst = max(fractions)
    if worst >= 1.0:
        return "exhausted"
    if worst >= CRITICAL_AT:
        return "critical"
    if worst >= WARN_AT:
        return "warning"
    return "ok"


def budget(session: Session, project: Project) -> Budget:
    """Set, spent and remaining in pixels, superpixels, images and hours.

    The lead sets pixels and hours; superpixels and images are the pixel budget converted at
    the pool's mean superpixel and image size (marked ``equivalent``).
    """
    pool_images, pool_pixels = pool_size(session, project.id)
    spent_pixels, spent_superpixels, spent_seconds = _round_sums(session, project.id)
    map_pixels, map_count = session.execute(
        select(
            func.coalesce(func.sum(Image.width * Image.height), 0),
            func.coalesce(func.sum(SuperpixelMap.count), 0),
        )
        .join(Image, Image.id == SuperpixelMap.image_id)
        .where(
            Image.project_id == project.id,
            Image.split == Split.pool,
            is_current_map(project),
        )
    ).one()
    mean_superpixel = int(map_pixels) / int(map_count) if map_count else None
    labeled_images = int(
        session.scalar(
            select(func.count(Annotation.id))
            .join(Image, Image.id == Annotation.image_id)
            .where(
                Image.project_id == project.id,
                Image.split == Split.pool,
                Annotation.labeled_pixels > 0,
            )
        )
        or 0
    )
    pixel_budget = float(project.budget_pixels) if project.budget_pixels is not None else None
    superpixel_budget = (
        pixel_budget / mean_superpixel if pixel_budget is not None and mean_superpixel else None
    )
    image_budget = (
        pixel_budget / (pool_pixels / pool_images)
        if pixel_budget is not None and pool_images and pool_pixels
        else None
    )
    lines = [
        _line("pixels", pixel_budget, float(spent_pixels)),
        _line("superpixels", superpixel_budget, float(spent_superpixels), equivalent=True),
        _line("images", image_budget, float(labeled_images), equivalent=True),
        _line("hours", project.budget_hours, spent_seconds / 3600.0),
    ]
    fractions = [
        line.fraction_spent
        for line in lines
        if not line.equivalent and line.fraction_spent is not None
    ]
    return Budget(
        lines=lines,
        level=warning_level(fractions),
        warn_at=WARN_AT,
        critical_at=CRITICAL_AT,
        pool_images=pool_images,
        pool_pixels=pool_pixels,
        mean_superpixel_pixels=mean_superpixel,
        note="Pixels: newly labeled by accepted saves. Superpixels: of queries marked done. "
        "Images: pool images with a labeled pixel. Hours: the seconds annotators' saves "
        "recorded. Superpixel and image budgets are the pixel budget at the pool's mean "
        "superpixel and image size.",
    )
