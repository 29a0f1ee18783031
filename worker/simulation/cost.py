"""Before a simulate run: about how long it will take on this machine, and a warning when
the settings look sized for a GPU while the run is on a CPU.

The estimate multiplies per-step times measured on the machine (a few training iterations,
a few scored and evaluated images: ``SeedRun.step_times``) by the work the settings ask for.
Early stopping can only make training shorter, so training time is an upper bound.
"""

from __future__ import annotations

from dataclasses import dataclass

from worker.simulation.loop import ACTIVE_STRATEGIES, SimulationConfig

LONG_RUN_SECONDS = 3600.0  # on a CPU, a run longer than this gets the warning


@dataclass(frozen=True)
class StepTimes:
    """Seconds per training iteration, per pool image scored (T passes) and per
    validation image evaluated, measured with the run's settings."""

    train_iteration: float
    score_image: float
    evaluate_image: float


@dataclass(frozen=True)
class Work:
    """What the settings ask for, over all seeds."""

    train_iterations: int
    scored_images: int
    evaluated_images: int


@dataclass(frozen=True)
class RunEstimate:
    train_seconds: float
    score_seconds: float
    evaluate_seconds: float
    warnings: tuple[str, ...]

    @property
    def total_seconds(self) -> float:
        return self.train_seconds + self.score_seconds + self.evaluate_seconds


def count_work(
    config: SimulationConfig,
    pool_images: int,
    val_images: int,
    seeds: int,
    stopping_images: int = 0,
) -> Work:
    """Training iterations, scored pool images (every open image, each round, for each
    strategy that scores: an upper bound) and evaluated images: the reported split after
    every round, and the early-stopping split every ``eval_every`` training iterations."""
    active = [s for s in ACTIVE_STRATEGIES if s in config.strategies]
    scoring = [s for s in active if s != "random_images"]
    full = "full" in config.strategies
    train = (
        (config.initial_iterations if active else 0)
        + len(active) * config.rounds * config.finetune_iterations
        + (config.full_iterations if full else 0)
    )
    scored = len(scoring) * config.rounds * pool_images
    evaluations = (1 if active else 0) + len(active) * config.rounds + (1 if full else 0)
    stopping = train // config.eval_every * stopping_images if config.patience > 0 else 0
    return Work(train * seeds, scored * seeds, (evaluations * val_images + stopping) * seeds)


def estimate_run(
    config: SimulationConfig, work: Work, times: StepTimes, device_type: str, threads: int
) -> RunEstimate:
    """Seconds per part, with warnings when a CPU run looks GPU-sized."""
    train = work.train_iterations * times.train_iteration
    score = work.scored_images * times.score_image
    evaluate = work.evaluated_images * times.evaluate_image
    warnings: list[str] = []
    if device_type == "cpu":
        total = train + score + evaluate
        if total > LONG_RUN_SECONDS:
            if train >= score:
                cheaper = (
                    "fewer --iterations/--finetune-iterations/--full-iterations, "
                    "--crop-size, a smaller --scale or model"
                )
            else:
                cheaper = "fewer --mc-samples (T), --max-pool-images, a smaller --scale"
            warnings.append(
                f"these settings look sized for a GPU: about {format_seconds(total)} on this "
                f"CPU ({threads} threads; training {format_seconds(train)}, scoring "
                f"{format_seconds(score)}). Cheaper: {cheaper}."
            )
        if config.bf16:
            warnings.append("--bf16 on a CPU is usually slower than float32; drop it here.")
        if not config.cheap_uncertainty and config.mc_samples > 1:
            warnings.append(
                f"--naive-uncertainty runs the whole network {config.mc_samples} times per "
                "image; the cheap path gives the same scores when dropout is only in the head."
            )
    return RunEstimate(train, score, evaluate, tuple(warnings))


def format_seconds(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    minutes = seconds / 60
    if minutes < 90:
        return f"{minutes:.0f} min"
    return f"{int(minutes // 60)} h {int(minutes % 60):02d} min"


def format_estimate(estimate: RunEstimate) -> str:
    """One ETA line, then one line per warning."""
    lines = [
        f"estimate: about {format_seconds(estimate.total_seconds)} "
        f"(training at most {format_seconds(estimate.train_seconds)}, scoring "
        f"{format_seconds(estimate.score_seconds)}, evaluation "
        f"{format_seconds(estimate.evaluate_seconds)})"
    ]
    lines += [f"warning: {warning}" for warning in estimate.warnings]
    return "\n".join(lines)
