"""One active-learning run per strategy on arrays: label, train, score, query, repeat.

Everything here works on in-memory arrays; reading the dataset and writing reports live
in ``dataset.py`` and ``report.py``.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from numpy.typing import NDArray

from worker.engine.evaluation import evaluate_confusion, evaluate_confusion_encoded
from worker.engine.features import EncodedImage
from worker.engine.metrics import iou_per_class, mean_iou
from worker.engine.model import ModelConfig, SegmentationModel, build_model, model_kinds
from worker.engine.oracle import oracle_label
from worker.engine.reductions import (
    IMAGE_SCORES,
    class_balance_weights,
    labeled_class_counts,
    superpixel_scores,
    unlabeled_pixel_counts,
)
from worker.engine.scoring import score_encoded, score_images
from worker.engine.strategies import STRATEGIES, ImageQuery, plan_round
from worker.engine.training import (
    STOP_CRITERIA,
    UNLABELED,
    TrainConfig,
    TrainResult,
    train_on_features,
    train_on_partial_masks,
)

# `static_matched` is static asking, round by round, the pixels `dynamic` asked for: the
# same number of images, each taking its top-scored superpixels until an even share of
# dynamic's round total is reached (within one superpixel per image; plan_round).
SIMULATION_STRATEGIES = (*STRATEGIES, "static_matched")
ACTIVE_STRATEGIES = ("dynamic", "static", "static_matched", "random_superpixels", "random_images")


@dataclass(frozen=True)
class SimulationConfig:
    strategies: tuple[str, ...] = ("dynamic", "static", "random_images", "full")
    rounds: int = 3
    initial_images: int = 10
    images_per_round: int = 10
    superpixel_size: int = 16
    superpixel_algorithm: str = "slic"
    uncertainty: str = "entropy"
    mc_samples: int = 20
    cheap_uncertainty: bool = True
    static_fraction: float = 0.275
    oracle: str = "exact"
    # The model: "efficientnet_lite0" (pretrained encoder, frozen, trained from cached
    # features) learns far better on a CPU than "unet" (from scratch; width and depth).
    model: str = "efficientnet_lite0"
    encoder_weights: str | None = None
    unfreeze_encoder: bool = False
    decoder_channels: int = 64
    encoder_zoom: int = 1
    width: int = 16
    depth: int = 4
    dropout: float = 0.5
    # Maximum iterations of each training; with a stopping split, training stops after
    # `patience` evaluations (every `eval_every` iterations) without a better held-out
    # `stop_on` (mIoU or loss) and keeps the best weights (patience 0: no early stopping).
    initial_iterations: int = 500
    finetune_iterations: int = 200
    full_iterations: int = 1000
    eval_every: int = 50
    patience: int = 4
    warmup_iterations: int = 0
    keep_previous_model: bool = True
    stop_on: str = "miou"
    batch_size: int = 8
    learning_rate: float = 1e-3
    crop_size: int | None = None
    class_weights: bool = False
    bf16: bool = False
    round_pixel_budget: int | None = None
    scoring_batch: int = 8
    image_score: str = "mean"
    background_classes: tuple[int, ...] = ()
    class_balance: bool = False

    def __post_init__(self) -> None:
        unknown = set(self.strategies) - set(SIMULATION_STRATEGIES)
        if unknown:
            raise ValueError(
                f"unknown strategies {sorted(unknown)}; known: {list(SIMULATION_STRATEGIES)}"
            )
        if not self.strategies:
            raise ValueError("at least one strategy is needed")
        if "static_matched" in self.strategies and "dynamic" not in self.strategies:
            raise ValueError("static_matched needs dynamic in the same run to match its pixels")
        if self.rounds < 0 or self.initial_images < 1 or self.images_per_round < 1:
            raise ValueError("rounds must be >= 0, initial and per-round images >= 1")
        if self.image_score not in IMAGE_SCORES:
            raise ValueError(f"unknown image score {self.image_score!r}; known: {IMAGE_SCORES}")
        if self.image_score == "foreground" and not self.background_classes:
            raise ValueError("--image-score foreground needs --background-classes")
        if self.model not in model_kinds():
            raise ValueError(f"unknown model {self.model!r}; known: {model_kinds()}")
        if self.cached_features and self.crop_size is not None:
            raise ValueError(
                "--crop-size does not apply to a frozen pretrained encoder: it trains on whole "
                "cached features with flips (use --unfreeze-encoder or --model unet for crops)"
            )
        if self.stop_on not in STOP_CRITERIA:
            raise ValueError(f"stop_on must be one of {STOP_CRITERIA}, got {self.stop_on!r}")
        if self.eval_every < 1 or self.patience < 0:
            raise ValueError(
                f"eval_every must be >= 1 and patience >= 0 (0: no early stopping), got "
                f"{self.eval_every}, {self.patience}"
            )

    @property
    def cached_features(self) -> bool:
        """Whether training and scoring run from encoder features computed once per image."""
        return self.model != "unet" and not self.unfreeze_encoder

    def model_config(self, num_classes: int) -> ModelConfig:
        return ModelConfig(
            num_classes=num_classes,
            width=self.width,
            depth=self.depth,
            dropout=self.dropout,
            kind=self.model,
            encoder_weights=self.encoder_weights,
            decoder_channels=self.decoder_channels,
            freeze_encoder=not self.unfreeze_encoder,
            encoder_zoom=self.encoder_zoom,
        )

    def train_config(self, iterations: int, early_stopping: bool = False) -> TrainConfig:
        return TrainConfig(
            iterations=iterations,
            batch_size=self.batch_size,
            learning_rate=self.learning_rate,
            crop_size=self.crop_size,
            class_weights=self.class_weights,
            bf16=self.bf16,
            validate_every=self.eval_every if early_stopping else 0,
            patience=self.patience,
            stop_on=self.stop_on,
            warmup_iterations=self.warmup_iterations,
            start_is_candidate=self.keep_previous_model,
        )


@dataclass
class RoundRow:
    """One strategy's state after one round: what was spent and what it bought."""

    strategy: str
    seed: int
    round: int
    labeled_pixel_fraction: float  # pixels asked of the oracle / all pool pixels
    superpixels_labeled: int
    images_labeled: int
    val_miou: float
    per_class_iou: list[float | None]
    seconds: float
    query_fraction: float | None = None  # share of the picked images' open pixels asked
    superpixels_per_image: list[int] = field(default_factory=list)
    iterations: int | None = None  # trained this round (early stopping: fewer than the max)
    stopped_early: bool | None = None

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass
class QueryRow:
    """One picked image in one round: what was asked of it and what it had open."""

    strategy: str
    seed: int
    round: int
    image: str
    image_score: float | None
    superpixels_asked: int
    superpixels_open: int  # with unlabeled pixels before this query
    superpixels_total: int
    pixels_asked: int
    pixels_open: int
    pixels_total: int
    pixel_share: float  # pixels_asked / pixels_open

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass
class Pool:
    """The pool's images, ground truth and superpixels (fixed), plus what has been asked."""

    images: Sequence[NDArray[np.uint8]]
    ground_truth: Sequence[NDArray[np.uint8]]
    superpixels: Sequence[NDArray[np.int32]]
    masks: list[NDArray[np.uint8]]
    asked: list[NDArray[np.bool_]]
    superpixels_asked: int = 0

    @classmethod
    def fresh(
        cls,
        images: Sequence[NDArray[np.uint8]],
        ground_truth: Sequence[NDArray[np.uint8]],
        superpixels: Sequence[NDArray[np.int32]],
    ) -> Pool:
        return cls(
            images,
            ground_truth,
            superpixels,
            [np.full(m.shape, UNLABELED, np.uint8) for m in ground_truth],
            [np.zeros(m.shape, bool) for m in ground_truth],
        )

    def answer(
        self, index: int, superpixel_ids: NDArray[np.integer], mode: str, ignore: int | None
    ) -> None:
        self.masks[index] = oracle_label(
            self.masks[index],
            self.ground_truth[index],
            self.superpixels[index],
            superpixel_ids,
            mode,
            ignore,
        )
        self.asked[index] |= np.isin(self.superpixels[index], superpixel_ids)
        self.superpixels_asked += len(superpixel_ids)

    def answer_whole(self, index: int, mode: str, ignore: int | None) -> None:
        ids = np.unique(self.superpixels[index][~self.asked[index]])
        self.answer(index, ids, mode, ignore)

    def spent_fraction(self) -> float:
        return sum(int(a.sum()) for a in self.asked) / sum(a.size for a in self.asked)

    def images_labeled(self) -> int:
        return sum(bool(a.any()) for a in self.asked)


def score_pool(
    model: SegmentationModel,
    pool: Pool,
    config: SimulationConfig,
    device: torch.device,
    num_classes: int,
    encoded: Sequence[EncodedImage] | None = None,
) -> tuple[NDArray[np.float64], list[NDArray[np.float64]]]:
    """Image scores (NaN = nothing left to ask) and per-image superpixel scores; from the
    pool's cached encoder features when ``encoded`` is given."""
    class_weights = (
        class_balance_weights(labeled_class_counts(pool.masks, num_classes))
        if config.class_balance
        else None
    )
    image_scores = np.full(len(pool.images), np.nan)
    sp_scores = [np.full(int(s.max()) + 1, np.nan) for s in pool.superpixels]
    open_images = [i for i, asked in enumerate(pool.asked) if not asked.all()]
    common = {
        "method": config.uncertainty,
        "samples": config.mc_samples,
        "device": device,
        "batch_size": config.scoring_batch,
        "bf16": config.bf16,
        "image_score_mode": config.image_score,
        "background_classes": config.background_classes,
        "class_weights": class_weights,
    }
    superpixels = [pool.superpixels[i] for i in open_images]
    asked = [pool.asked[i] for i in open_images]
    scored = (
        score_encoded(model, [encoded[i] for i in open_images], superpixels, asked, **common)  # type: ignore[arg-type]
        if encoded is not None
        else score_images(
            model,
            [pool.images[i] for i in open_images],
            superpixels,
            asked,
            cheap=config.cheap_uncertainty,
            **common,  # type: ignore[arg-type]
        )
    )
    for index, result in zip(open_images, scored, strict=True):
        sp_scores[index] = result.superpixel_scores
        image_scores[index] = result.image_score
    return image_scores, sp_scores


@dataclass
class Validation:
    """The split the reported mIoU is measured on (never the one training stops on)."""

    images: Sequence[NDArray[np.uint8]]
    masks: Sequence[NDArray[np.uint8]]
    num_classes: int
    ignore_index: int | None
    encoded: Sequence[EncodedImage] | None = None  # cached encoder features, same order


@dataclass
class StoppingSplit:
    """A held-out labeled split whose loss stops training (masks: 255 = ignored)."""

    images: Sequence[NDArray[np.uint8]]
    masks: Sequence[NDArray[np.uint8]]
    encoded: Sequence[EncodedImage] | None = None

    @classmethod
    def from_ground_truth(
        cls,
        images: Sequence[NDArray[np.uint8]],
        ground_truth: Sequence[NDArray[np.uint8]],
        ignore_index: int | None,
        encoded: Sequence[EncodedImage] | None = None,
    ) -> StoppingSplit:
        masks = [
            m
            if ignore_index is None
            else np.where(m == ignore_index, UNLABELED, m).astype(np.uint8)
            for m in ground_truth
        ]
        return cls(images, masks, encoded)


RowCallback = Callable[[RoundRow], None]
QueryCallback = Callable[[QueryRow], None]


class SeedRun:
    """All strategies for one seed, sharing the random initial images and round-0 model."""

    def __init__(
        self,
        pool_images: Sequence[NDArray[np.uint8]],
        pool_truth: Sequence[NDArray[np.uint8]],
        superpixels: Sequence[NDArray[np.int32]],
        validation: Validation,
        config: SimulationConfig,
        seed: int,
        device: torch.device,
        on_row: RowCallback | None = None,
        image_names: Sequence[str] | None = None,
        on_query: QueryCallback | None = None,
        pool_encoded: Sequence[EncodedImage] | None = None,
        stopping: StoppingSplit | None = None,
    ) -> None:
        """``pool_encoded`` (and ``validation.encoded``, ``stopping.encoded``): cached encoder
        features of a frozen pretrained model, computed once and shared by every seed and
        strategy. ``stopping``: early stopping on its loss; without it every training runs
        its maximum iterations."""
        if config.cached_features and (
            pool_encoded is None
            or validation.encoded is None
            or (stopping is not None and stopping.encoded is None)
        ):
            raise ValueError(f"model {config.model!r} with a frozen encoder needs cached features")
        self.pool_encoded, self.stopping = pool_encoded, stopping
        self.pool_images, self.pool_truth, self.superpixels = pool_images, pool_truth, superpixels
        self.validation, self.config, self.seed, self.device = validation, config, seed, device
        self.on_row, self.on_query = on_row, on_query
        self.image_names = (
            list(image_names) if image_names else [str(i) for i in range(len(pool_images))]
        )
        self.rows: list[RoundRow] = []
        self.queries: list[QueryRow] = []
        # round -> (pixels, images) that dynamic asked for, for static_matched
        self.matched_pixels: dict[int, tuple[int, int]] = {}

    def _row(
        self,
        strategy: str,
        round_number: int,
        model: SegmentationModel,
        pool: Pool,
        started: float,
        **extra: object,
    ) -> RoundRow:
        matrix = self._confusion(model, self.validation)
        row = RoundRow(
            strategy=strategy,
            seed=self.seed,
            round=round_number,
            labeled_pixel_fraction=pool.spent_fraction(),
            superpixels_labeled=pool.superpixels_asked,
            images_labeled=pool.images_labeled(),
            val_miou=mean_iou(matrix),
            per_class_iou=[None if np.isnan(v) else float(v) for v in iou_per_class(matrix)],
            seconds=time.perf_counter() - started,
            **extra,  # type: ignore[arg-type]
        )
        self.rows.append(row)
        if self.on_row is not None:
            self.on_row(row)
        return row

    def _confusion(self, model: SegmentationModel, validation: Validation) -> NDArray[np.int64]:
        return (
            evaluate_confusion_encoded(
                model,
                validation.encoded,
                validation.masks,
                validation.num_classes,
                self.device,
                validation.ignore_index,
            )
            if self.config.cached_features and validation.encoded is not None
            else evaluate_confusion(
                model,
                validation.images,
                validation.masks,
                validation.num_classes,
                self.device,
                validation.ignore_index,
            )
        )

    def step_times(self, iterations: int = 3, images: int = 4) -> tuple[float, float, float]:
        """Seconds per training iteration, per scored pool image and per evaluated image
        with this run's settings, measured on a throwaway model (the ETA before a run;
        rows and queries stay untouched)."""
        config, count = self.config, min(images, len(self.pool_images))
        rng = np.random.default_rng(self.seed)
        pool = Pool.fresh(self.pool_images, self.pool_truth, self.superpixels)
        for index in range(count):
            pool.answer_whole(index, config.oracle, self.validation.ignore_index)
        model = self._new_model()
        self._train(model, pool, 1, rng)  # warm-up: first-call allocations
        started = time.perf_counter()
        self._train(model, pool, iterations, rng)
        train = (time.perf_counter() - started) / iterations
        few = Pool.fresh(
            self.pool_images[:count], self.pool_truth[:count], self.superpixels[:count]
        )
        encoded = self.pool_encoded[:count] if self.pool_encoded is not None else None
        started = time.perf_counter()
        score_pool(model, few, config, self.device, self.validation.num_classes, encoded)
        score = (time.perf_counter() - started) / count
        val = self.validation
        shown = min(images, len(val.images))
        subset = Validation(
            val.images[:shown],
            val.masks[:shown],
            val.num_classes,
            val.ignore_index,
            None if val.encoded is None else val.encoded[:shown],
        )
        started = time.perf_counter()
        self._confusion(model, subset)
        return train, score, (time.perf_counter() - started) / max(shown, 1)

    def _new_model(self) -> SegmentationModel:
        torch.manual_seed(self.seed)
        return build_model(self.config.model_config(self.validation.num_classes)).to(self.device)

    def _train(
        self, model: SegmentationModel, pool: Pool, iterations: int, rng: np.random.Generator
    ) -> TrainResult:
        stopping = self.stopping if self.config.patience > 0 else None
        config = self.config.train_config(iterations, early_stopping=stopping is not None)
        if self.config.cached_features:
            assert self.pool_encoded is not None
            held_out = None if stopping is None else (stopping.encoded, stopping.masks)
            return train_on_features(
                model,
                self.pool_encoded,
                pool.masks,
                config,
                rng,
                self.device,
                held_out,  # type: ignore[arg-type]
            )
        return train_on_partial_masks(
            model,
            pool.images,
            pool.masks,
            config,
            rng,
            self.device,
            None if stopping is None else (stopping.images, stopping.masks),
        )

    def run(self) -> list[RoundRow]:
        config = self.config
        ignore = self.validation.ignore_index
        rng = np.random.default_rng(self.seed)
        count = min(config.initial_images, len(self.pool_images))
        initial = rng.choice(len(self.pool_images), size=count, replace=False)
        started = time.perf_counter()
        base_pool = Pool.fresh(self.pool_images, self.pool_truth, self.superpixels)
        for index in initial:
            base_pool.answer_whole(int(index), config.oracle, ignore)
        active = [s for s in ACTIVE_STRATEGIES if s in config.strategies]
        for strategy in active:  # round 0: every strategy starts from the same whole images
            for index in initial:
                self._record_initial(strategy, int(index))
        if active:
            base_model = self._new_model()
            trained = self._train(base_model, base_pool, config.initial_iterations, rng)
            first = self._row(
                active[0],
                0,
                base_model,
                base_pool,
                started,
                iterations=trained.iterations_run,
                stopped_early=trained.stopped_early,
            )
            base_seconds = first.seconds
            for strategy in active[1:]:
                copied = copy.copy(first)
                copied.strategy = strategy
                self.rows.append(copied)
                if self.on_row is not None:
                    self.on_row(copied)
            for offset, strategy in enumerate(active):
                self._run_strategy(
                    strategy,
                    copy.deepcopy(base_model),
                    copy.deepcopy(base_pool),
                    np.random.default_rng([self.seed, offset + 1]),
                    base_seconds,
                )
        if "full" in config.strategies:
            self._run_full()
        return self.rows

    def _run_strategy(
        self,
        strategy: str,
        model: SegmentationModel,
        pool: Pool,
        rng: np.random.Generator,
        seconds: float,
    ) -> None:
        config = self.config
        ignore = self.validation.ignore_index
        for round_number in range(1, config.rounds + 1):
            started = time.perf_counter() - seconds
            engine_strategy = "static" if strategy == "static_matched" else strategy
            if strategy == "random_images":
                image_scores = np.array([0.0 if not a.all() else np.nan for a in pool.asked])
                sp_scores = [
                    superpixel_scores(np.zeros(s.shape), s, a)
                    for s, a in zip(pool.superpixels, pool.asked, strict=True)
                ]
            else:
                image_scores, sp_scores = score_pool(
                    model,
                    pool,
                    config,
                    self.device,
                    self.validation.num_classes,
                    self.pool_encoded if config.cached_features else None,
                )
            counts = [
                unlabeled_pixel_counts(s, a, len(scores))
                for s, a, scores in zip(pool.superpixels, pool.asked, sp_scores, strict=True)
            ]
            images_per_round, matched = config.images_per_round, None
            if strategy == "static_matched":
                matched, images_per_round = self.matched_pixels.get(round_number, (0, 0))
            queries = (
                plan_round(
                    engine_strategy,
                    image_scores,
                    sp_scores,
                    counts,
                    images_per_round,
                    rng,
                    static_fraction=config.static_fraction,
                    pixel_budget=config.round_pixel_budget,
                    matched_pixels=matched,
                )
                if images_per_round
                else []
            )
            open_pixels = sum(int(counts[q.image_index].sum()) for q in queries)
            asked_pixels = sum(q.pixel_count for q in queries)
            query_fraction = asked_pixels / open_pixels if open_pixels else 0.0
            if strategy == "dynamic":
                self.matched_pixels[round_number] = (asked_pixels, len(queries))
            for query in queries:
                self._record_query(strategy, round_number, query, counts, image_scores)
                pool.answer(query.image_index, query.superpixel_ids, config.oracle, ignore)
            trained = self._train(model, pool, config.finetune_iterations, rng)
            row = self._row(
                strategy,
                round_number,
                model,
                pool,
                started,
                query_fraction=query_fraction,
                superpixels_per_image=[len(q.superpixel_ids) for q in queries],
                iterations=trained.iterations_run,
                stopped_early=trained.stopped_early,
            )
            seconds = row.seconds

    def _record_query(
        self,
        strategy: str,
        round_number: int,
        query: ImageQuery,
        counts: Sequence[NDArray[np.int64]],
        image_scores: NDArray[np.float64],
    ) -> None:
        open_counts = counts[query.image_index]
        score = float(image_scores[query.image_index])
        pixels_open = int(open_counts.sum())
        row = QueryRow(
            strategy=strategy,
            seed=self.seed,
            round=round_number,
            image=self.image_names[query.image_index],
            image_score=None if strategy == "random_images" or np.isnan(score) else score,
            superpixels_asked=len(query.superpixel_ids),
            superpixels_open=int((open_counts > 0).sum()),
            superpixels_total=len(open_counts),
            pixels_asked=query.pixel_count,
            pixels_open=pixels_open,
            pixels_total=int(self.superpixels[query.image_index].size),
            pixel_share=query.pixel_count / pixels_open if pixels_open else 0.0,
        )
        self.queries.append(row)
        if self.on_query is not None:
            self.on_query(row)

    def _record_initial(self, strategy: str, index: int) -> None:
        """A round-0 row: one of the random initial images, asked in full."""
        total = int(self.superpixels[index].max()) + 1
        pixels = int(self.superpixels[index].size)
        row = QueryRow(
            strategy=strategy,
            seed=self.seed,
            round=0,
            image=self.image_names[index],
            image_score=None,
            superpixels_asked=total,
            superpixels_open=total,
            superpixels_total=total,
            pixels_asked=pixels,
            pixels_open=pixels,
            pixels_total=pixels,
            pixel_share=1.0,
        )
        self.queries.append(row)
        if self.on_query is not None:
            self.on_query(row)

    def _run_full(self) -> None:
        started = time.perf_counter()
        pool = Pool.fresh(self.pool_images, self.pool_truth, self.superpixels)
        for index in range(len(self.pool_images)):
            pool.answer_whole(index, self.config.oracle, self.validation.ignore_index)
        model = self._new_model()
        trained = self._train(
            model, pool, self.config.full_iterations, np.random.default_rng(self.seed)
        )
        self._row(
            "full",
            0,
            model,
            pool,
            started,
            iterations=trained.iterations_run,
            stopped_early=trained.stopped_early,
        )
