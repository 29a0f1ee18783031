"""Query: pick the round's images and, per the project's strategy, the superpixels to ask
for; write the query rows and open the round for labeling, in one transaction."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, overload

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, undefer

from core.models import (
    Annotation,
    Image,
    ImageScore,
    Project,
    Query,
    Round,
    RoundStatus,
    Split,
    SuperpixelMap,
)
from core.models.base import utc_now
from worker.data import (
    labeled,
    open_pool_images,
    partial_mask,
    superpixel_labels,
    unpack_classes,
    unpack_counts,
    unpack_floats,
)
from worker.engine.reductions import unlabeled_pixel_counts
from worker.engine.strategies import ImageQuery, plan_round
from worker.jobs import JobLease

# Strategies whose picks ignore the model's scores (the pool is not scored for them).
UNSCORED_STRATEGIES = ("random_images", "full")


@dataclass
class Candidate:
    """One pool image the round may ask about: its map and what is still unlabeled."""

    image_id: int
    superpixel_map_id: int
    image_score: float  # NaN: nothing left to ask
    superpixel_scores: NDArray[np.float64]  # (n,), NaN = fully labeled superpixel
    unlabeled_counts: NDArray[np.int64]  # (n,)
    uncertainty_png: bytes | None = None
    superpixel_classes: NDArray[np.uint8] | None = None  # (n,) the model's predicted class


def project_has_labels(session: Session, project_id: int) -> bool:
    """Whether any pool pixel is labeled (else the round is the random initial one)."""
    found = session.scalar(
        select(Annotation.id)
        .join(Image, Image.id == Annotation.image_id)
        .where(Image.project_id == project_id, Image.split == Split.pool)
        .where(Annotation.labeled_pixels > 0)
        .limit(1)
    )
    return found is not None


class UnscoredCandidates(Sequence[Candidate]):
    """Every ready pool image with unlabeled pixels and a current superpixel map, scored 0
    (for random or full picks). Listed with one query; an image's map and mask are decoded
    only when the plan first looks at it, so a random round over a large pool decodes the
    few images it picks, not the whole pool. Reads through ``session`` while in use."""

    def __init__(self, session: Session, project: Project) -> None:
        self._session = session
        self._rows = list(
            session.execute(
                open_pool_images(project, Image, SuperpixelMap, Annotation.labeled_pixels)
            )
        )
        self._decoded: dict[int, Candidate] = {}

    def __len__(self) -> int:
        return len(self._rows)

    @property
    def decoded(self) -> int:
        """How many candidates were decoded so far."""
        return len(self._decoded)

    @overload
    def __getitem__(self, index: int) -> Candidate: ...

    @overload
    def __getitem__(self, index: slice) -> list[Candidate]: ...

    def __getitem__(self, index: int | slice) -> Candidate | list[Candidate]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        position = range(len(self))[index]  # IndexError past the end, as a list would
        if position not in self._decoded:
            self._decoded[position] = self._decode(position)
        return self._decoded[position]

    def _decode(self, position: int) -> Candidate:
        image, superpixel_map, labeled_pixels = self._rows[position]
        labels = superpixel_labels(self._session, superpixel_map, image)
        # Unlabeled images (most of them in an early round) need no mask decoding.
        known = (
            labeled(partial_mask(self._session, image))
            if labeled_pixels
            else np.zeros(labels.shape, dtype=bool)
        )
        counts = unlabeled_pixel_counts(labels, known, superpixel_map.count)
        scores = np.where(counts > 0, 0.0, np.nan)
        return Candidate(image.id, superpixel_map.id, 0.0, scores, counts)


class _Field(Sequence[NDArray[Any]]):
    """One array field of each candidate, read when indexed (keeps candidates lazy)."""

    def __init__(self, candidates: Sequence[Candidate], read: Callable[[Candidate], Any]) -> None:
        self._candidates, self._read = candidates, read

    def __len__(self) -> int:
        return len(self._candidates)

    @overload
    def __getitem__(self, index: int) -> NDArray[Any]: ...

    @overload
    def __getitem__(self, index: slice) -> list[NDArray[Any]]: ...

    def __getitem__(self, index: int | slice) -> NDArray[Any] | list[NDArray[Any]]:
        if isinstance(index, slice):
            return [self._read(c) for c in self._candidates[index]]
        value: NDArray[Any] = self._read(self._candidates[index])
        return value


def scored_candidates(session: Session, round_id: int) -> list[Candidate]:
    rows = session.scalars(
        select(ImageScore)
        .where(ImageScore.round_id == round_id)
        .order_by(ImageScore.image_id)
        .options(
            undefer(ImageScore.superpixel_scores),
            undefer(ImageScore.unlabeled_pixels),
            undefer(ImageScore.uncertainty_png),
            undefer(ImageScore.superpixel_classes),
        )
    )
    return [
        Candidate(
            row.image_id,
            row.superpixel_map_id,
            np.nan if row.image_score is None else row.image_score,
            unpack_floats(row.superpixel_scores),
            unpack_counts(row.unlabeled_pixels),
            row.uncertainty_png,
            None if row.superpixel_classes is None else unpack_classes(row.superpixel_classes),
        )
        for row in rows
    ]


def remaining_budget(session: Session, project: Project) -> int | None:
    """Pixels the project may still ask for, when it has a pixel budget."""
    if project.budget_pixels is None:
        return None
    spent = session.scalar(
        select(func.coalesce(func.sum(Round.spent_pixels), 0)).where(Round.project_id == project.id)
    )
    return max(project.budget_pixels - int(spent or 0), 0)


def plan_queries(
    session: Session, project: Project, round_: Round, initial: bool
) -> tuple[Sequence[Candidate], list[ImageQuery]]:
    """The candidates and the engine's plan for them (DESIGN.md §1.4-1.5)."""
    candidates: Sequence[Candidate]
    if initial:
        # First round: initial_images picked at random, every superpixel of each.
        strategy, count = "random_images", project.initial_images
        candidates = UnscoredCandidates(session, project)
    elif round_.strategy in UNSCORED_STRATEGIES:
        strategy, count = round_.strategy, project.images_per_round
        candidates = UnscoredCandidates(session, project)
    else:
        strategy, count = round_.strategy, project.images_per_round
        candidates = scored_candidates(session, round_.id)
    rng = np.random.default_rng([project.id, round_.number])
    image_scores = (
        np.zeros(len(candidates), dtype=np.float64)  # unscored: every one 0
        if isinstance(candidates, UnscoredCandidates)
        else np.array([c.image_score for c in candidates], dtype=np.float64)
    )
    plan = plan_round(
        strategy,
        image_scores,
        _Field(candidates, lambda c: c.superpixel_scores),
        _Field(candidates, lambda c: c.unlabeled_counts),
        count,
        rng,
        static_fraction=project.static_fraction,
        pixel_budget=remaining_budget(session, project),
    )
    return candidates, plan


def predicted_classes(candidate: Candidate, superpixel_ids: NDArray[np.int64]) -> list[int] | None:
    """The model's class of each picked superpixel (the annotator's pre-fill), if scored."""
    if candidate.superpixel_classes is None:
        return None
    return [int(candidate.superpixel_classes[i]) for i in superpixel_ids]


def write_round_queries(lease: JobLease, round_id: int, initial: bool) -> str:
    """Writes the round's queries, opens it for labeling (or completes it when there is
    nothing to ask) and finishes the job, atomically. Returns the job's final message."""
    lease.report(max(lease.progress, 0.95 if not initial else 0.1), "querying: picking regions")
    with lease.runtime.session_factory() as session:
        round_ = session.get(Round, round_id)
        project = session.get(Project, round_.project_id) if round_ else None
        if round_ is None or project is None:
            raise LookupError(f"round {round_id} or its project is gone")
        candidates, plan = plan_queries(session, project, round_, initial)
        lease.stop()
        now = utc_now()
        for picked in plan:
            candidate = candidates[picked.image_index]
            session.add(
                Query(
                    round_id=round_.id,
                    image_id=candidate.image_id,
                    superpixel_map_id=candidate.superpixel_map_id,
                    superpixel_ids=[int(i) for i in picked.superpixel_ids],
                    superpixel_scores=[float(s) for s in np.nan_to_num(picked.scores)],
                    image_score=None if initial else float(np.nan_to_num(candidate.image_score)),
                    uncertainty_png=candidate.uncertainty_png,
                    predicted_classes=predicted_classes(candidate, picked.superpixel_ids),
                )
            )
        # The picked images' uncertainty now lives on their queries; drop the rest.
        session.execute(
            update(ImageScore)
            .where(ImageScore.round_id == round_.id)
            .values(uncertainty_png=None)
            .execution_options(synchronize_session=False)
        )
        superpixels = sum(len(p.superpixel_ids) for p in plan)
        pixels = sum(p.pixel_count for p in plan)
        if plan:
            round_.status = RoundStatus.labeling
            message = (
                f"round {round_.number}: {len(plan)} images, {superpixels} superpixels, "
                f"{pixels} pixels to label ({'random initial' if initial else round_.strategy})"
            )
        else:
            round_.status = RoundStatus.complete
            round_.finished_at = now
            message = f"round {round_.number}: nothing left to ask (pool labeled or budget spent)"
        lease.finish(session, message)
        session.commit()
        return message
