"""The lead dashboard's figures, each computed from the rows it summarizes (no caches).

Cost accounting follows DESIGN.md §1.7: rounds carry what their accepted saves spent
(``rounds.spent_pixels`` = pixels newly labeled, ``spent_superpixels`` = superpixels of
queries marked done, ``spent_seconds`` = the annotators' recorded seconds), and the
worker's remaining pixel budget is computed from the same sums.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from backend.dashboard.schemas import (
    Budget,
    BudgetLine,
    BudgetUnit,
    ClassBalance,
    ClassShare,
    CurrentRound,
    CurvePoint,
    Dashboard,
    Jobs,
    LearningCurve,
    Projection,
    RoundRow,
    SimulatedCurve,
    SimulatedPoint,
    TeamMember,
    WarningLevel,
)
from backend.projects.service import project_classes
from backend.rounds.schemas import JobRead
from backend.validation_types import JsonRefused, load_json_limited
from core.errors import InvalidInput
from core.masks import UNLABELED, decode_stored_mask
from core.models import (
    Annotation,
    AnnotationClassCounts,
    AnnotationSubmission,
    Image,
    Job,
    Membership,
    ModelCheckpoint,
    Project,
    Query,
    QueryStatus,
    Round,
    RoundStatus,
    SaveConflict,
    SimulationResult,
    Split,
    SuperpixelMap,
    User,
)

WARN_AT = 0.75
CRITICAL_AT = 0.9
# A class is starved when its share of the labeled pixels is under this part of its share
# of the validation ground truth (the paper warns that dominant classes crowd out rare ones).
STARVED_RATIO = 0.5
PROJECTION_METHOD = (
    "least-squares fit of mIoU = a + b·ln(labeled pixels) over the rounds' validation mIoU, "
    "evaluated at the pixel budget (or the whole pool without one), clamped to 0..1"
)
_UNFINISHED = (
    RoundStatus.pending,
    RoundStatus.training,
    RoundStatus.scoring,
    RoundStatus.querying,
    RoundStatus.labeling,
)
RECENT_JOBS = 20


def _pool_size(session: Session, project_id: int) -> tuple[int, int]:
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
    pool_images, pool_pixels = _pool_size(session, project.id)
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
            SuperpixelMap.size == project.superpixel_size,
            SuperpixelMap.algorithm == project.superpixel_algorithm.value,
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
    _, pool_pixels = _pool_size(session, project.id)
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
                model_kind=(metrics.get("model_config") or {}).get("kind", "unet")
                if model
                else None,
                iterations=metrics.get("iterations"),
                max_iterations=metrics.get("max_iterations"),
                stopped_early=metrics.get("stopped_early"),
            )
        )
    return out


def _class_counts(session: Session, statement: Any) -> tuple[np.ndarray[Any, Any], int]:
    """Pixel count per value 0..255 over the masks the statement selects, and their number."""
    counts = np.zeros(256, dtype=np.int64)
    images = 0
    for png, width, height in session.execute(statement.execution_options(yield_per=16)):
        mask = decode_stored_mask(png, width, height)
        counts += np.bincount(mask.ravel(), minlength=256)
        images += 1
    return counts, images


_DECODE_BATCH = 64


def _labeled_class_counts(session: Session, project_id: int) -> np.ndarray[Any, Any]:
    """Pixels per value 0..255 over the project's stored masks. Each mask version is decoded
    once: its counts are kept in ``annotation_class_counts`` (stale or missing entries are
    decoded and stored here; flushes, the caller commits)."""
    counts = np.zeros(256, dtype=np.int64)
    rows = session.execute(
        select(
            Annotation.id,
            Annotation.version,
            AnnotationClassCounts.version,
            AnnotationClassCounts.counts,
        )
        .join(Image, Image.id == Annotation.image_id)
        .outerjoin(AnnotationClassCounts, AnnotationClassCounts.annotation_id == Annotation.id)
        .where(
            Image.project_id == project_id,
            Annotation.mask_png.is_not(None),
            Annotation.labeled_pixels > 0,
        )
    ).all()
    stale: list[int] = []
    for annotation_id, version, cached_version, cached in rows:
        if cached_version == version and cached is not None:
            for value, pixels in cached.items():
                counts[int(value)] += int(pixels)
        else:
            stale.append(annotation_id)
    for start in range(0, len(stale), _DECODE_BATCH):
        batch = stale[start : start + _DECODE_BATCH]
        for annotation_id, version, png, width, height in session.execute(
            select(
                Annotation.id, Annotation.version, Annotation.mask_png, Image.width, Image.height
            )
            .join(Image, Image.id == Annotation.image_id)
            .where(Annotation.id.in_(batch))
        ):
            bins = np.bincount(decode_stored_mask(png, width, height).ravel(), minlength=256)
            bins[UNLABELED] = 0
            counts += bins
            entry = {str(int(k)): int(bins[k]) for k in np.flatnonzero(bins)}
            cache = session.get(AnnotationClassCounts, annotation_id)
            if cache is None:
                session.add(
                    AnnotationClassCounts(
                        annotation_id=annotation_id, version=version, counts=entry
                    )
                )
            else:
                cache.version = version
                cache.counts = entry
    session.flush()
    return counts


def class_balance(session: Session, project: Project) -> ClassBalance:
    """Each class's share of the labeled pixels against its share of the validation split's
    ground truth (255 = unlabeled is left out of both). Caches mask counts (see
    ``_labeled_class_counts``): the caller commits."""
    labeled = _labeled_class_counts(session, project.id)
    truth, validation_images = _class_counts(
        session,
        select(Image.ground_truth_png, Image.width, Image.height).where(
            Image.project_id == project.id,
            Image.split == Split.validation,
            Image.ground_truth_png.is_not(None),
        ),
    )
    labeled[UNLABELED] = 0
    truth[UNLABELED] = 0
    labeled_total = int(labeled.sum())
    truth_total = int(truth.sum())
    classes = []
    for label_class in project_classes(session, project.id):
        labeled_share = int(labeled[label_class.index]) / labeled_total if labeled_total else 0.0
        truth_share = int(truth[label_class.index]) / truth_total if truth_total else 0.0
        classes.append(
            ClassShare(
                index=label_class.index,
                name=label_class.name,
                colour=label_class.colour,
                labeled_pixels=int(labeled[label_class.index]),
                labeled_share=labeled_share,
                validation_pixels=int(truth[label_class.index]),
                validation_share=truth_share,
                starved=labeled_total > 0
                and truth_share > 0
                and labeled_share < STARVED_RATIO * truth_share,
            )
        )
    return ClassBalance(
        classes=classes,
        labeled_pixels=labeled_total,
        validation_pixels=truth_total,
        validation_images=validation_images,
        rule=f"starved: labeled share below {STARVED_RATIO:g} x the validation share",
    )


def team(session: Session, project: Project) -> list[TeamMember]:
    """Per person who saved or belongs here: accepted saves, superpixels and pixels their
    saves changed, recorded hours, throughput, and refused (412) saves."""
    saves: dict[int, tuple[int, int, int, float]] = {
        int(user_id or 0): (int(n), int(superpixels), int(pixels), float(seconds))
        # user_id is never NULL here (filtered below); ``or 0`` only narrows the type.
        for user_id, n, superpixels, pixels, seconds in session.execute(
            select(
                AnnotationSubmission.user_id,
                func.count(AnnotationSubmission.id),
                func.coalesce(func.sum(AnnotationSubmission.changed_superpixels), 0),
                func.coalesce(func.sum(AnnotationSubmission.changed_pixels), 0),
                func.coalesce(func.sum(AnnotationSubmission.seconds), 0.0),
            )
            .join(Image, Image.id == AnnotationSubmission.image_id)
            .where(Image.project_id == project.id, AnnotationSubmission.user_id.is_not(None))
            .group_by(AnnotationSubmission.user_id)
        )
    }
    conflicts: dict[int, int] = {
        int(user_id or 0): int(n)
        for user_id, n in session.execute(
            select(SaveConflict.user_id, func.count(SaveConflict.id))
            .where(SaveConflict.project_id == project.id, SaveConflict.user_id.is_not(None))
            .group_by(SaveConflict.user_id)
        )
    }
    roles = {
        int(user_id): role.value
        for user_id, role in session.execute(
            select(Membership.user_id, Membership.role).where(Membership.project_id == project.id)
        )
    }
    user_ids = set(saves) | set(conflicts) | set(roles)
    users = {u.id: u for u in session.scalars(select(User).where(User.id.in_(user_ids)))}
    members = []
    for user_id in sorted(user_ids):
        user = users.get(user_id)
        if user is None:
            continue
        n, superpixels, pixels, seconds = saves.get(user_id, (0, 0, 0, 0.0))
        refused = conflicts.get(user_id, 0)
        hours = seconds / 3600.0
        members.append(
            TeamMember(
                user_id=user_id,
                email=user.email,
                name=user.name,
                role=roles.get(user_id),
                submissions=n,
                superpixels=superpixels,
                pixels=pixels,
                hours=hours,
                superpixels_per_hour=superpixels / hours if hours > 0 else None,
                pixels_per_hour=pixels / hours if hours > 0 else None,
                conflicts=refused,
                conflict_share=refused / (refused + n) if refused + n else 0.0,
            )
        )
    return members


def jobs(session: Session, project: Project) -> Jobs:
    """Recent jobs, the newest round and what the lead may do next."""
    recent = session.scalars(
        select(Job).where(Job.project_id == project.id).order_by(Job.id.desc()).limit(RECENT_JOBS)
    )
    newest = session.scalar(
        select(Round).where(Round.project_id == project.id).order_by(Round.number.desc()).limit(1)
    )
    current = None
    oracle_available = False
    if newest is not None:
        counts = dict(
            session.execute(
                select(Query.status, func.count(Query.id))
                .where(Query.round_id == newest.id)
                .group_by(Query.status)
            ).all()
        )
        total = int(sum(counts.values()))
        done = int(counts.get(QueryStatus.done, 0))
        current = CurrentRound(
            id=newest.id,
            number=newest.number,
            status=newest.status,
            queries=total,
            queries_done=done,
        )
        if newest.status == RoundStatus.labeling:
            open_with_truth = session.scalar(
                select(func.count(Query.id))
                .join(Image, Image.id == Query.image_id)
                .where(
                    Query.round_id == newest.id,
                    Query.status != QueryStatus.done,
                    Image.ground_truth_png.is_not(None),
                )
            )
            oracle_available = bool(open_with_truth)
    unfinished = session.scalar(
        select(func.count(Round.id)).where(
            Round.project_id == project.id, Round.status.in_(_UNFINISHED)
        )
    )
    return Jobs(
        jobs=[JobRead.model_validate(job) for job in recent],
        current_round=current,
        can_start_round=not unfinished,
        oracle_available=oracle_available,
    )


def dashboard(session: Session, project: Project) -> Dashboard:
    """Every part; caches mask class counts (see ``class_balance``): the caller commits."""
    return Dashboard(
        budget=budget(session, project),
        learning_curve=learning_curve(session, project),
        rounds=rounds(session, project),
        class_balance=class_balance(session, project),
        team=team(session, project),
        jobs=jobs(session, project),
    )


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
