import pytest

from worker.simulation.cost import (
    StepTimes,
    count_work,
    estimate_run,
    format_estimate,
    format_seconds,
)
from worker.simulation.loop import SimulationConfig


def _config(**overrides: object) -> SimulationConfig:
    settings: dict[str, object] = {
        "strategies": ("dynamic", "static", "random_images", "full"),
        "rounds": 5,
        "initial_iterations": 1500,
        "finetune_iterations": 600,
        "full_iterations": 3000,
        "mc_samples": 20,
    }
    settings.update(overrides)
    return SimulationConfig(**settings)  # type: ignore[arg-type]


def test_work_counts_training_scoring_and_evaluation_over_seeds() -> None:
    work = count_work(_config(), pool_images=100, val_images=10, seeds=3)
    # 1500 + 3 active x 5 rounds x 600 + 3000 = 13,500 iterations per seed
    assert work.train_iterations == 3 * 13_500
    # dynamic and static score the pool each round; random_images does not
    assert work.scored_images == 3 * 2 * 5 * 100
    # round 0 once, 3 x 5 rounds, full once
    assert work.evaluated_images == 3 * (1 + 15 + 1) * 10
    stopping = count_work(_config(eval_every=50), 100, 10, seeds=3, stopping_images=20)
    assert stopping.evaluated_images == work.evaluated_images + 3 * 13_500 // 50 * 20
    off = count_work(_config(patience=0), 100, 10, seeds=3, stopping_images=20)
    assert off.evaluated_images == work.evaluated_images


def test_gpu_sized_settings_on_a_cpu_warn_with_the_eta() -> None:
    config = _config()
    work = count_work(config, pool_images=367, val_images=101, seeds=3)
    slow = StepTimes(train_iteration=0.5, score_image=0.4, evaluate_image=0.05)
    estimate = estimate_run(config, work, slow, "cpu", threads=2)
    assert estimate.total_seconds == pytest.approx(40_500 * 0.5 + 11_010 * 0.4 + 5_151 * 0.05)
    [warning] = estimate.warnings
    assert "look sized for a GPU: about 6 h 55 min" in warning and "--iterations" in warning
    assert format_estimate(estimate).splitlines()[1].startswith("warning: these settings")
    # the same settings on a GPU, or small ones on a CPU: no warning
    assert estimate_run(config, work, slow, "cuda", threads=2).warnings == ()
    fast = StepTimes(train_iteration=0.01, score_image=0.01, evaluate_image=0.001)
    assert estimate_run(config, work, fast, "cpu", threads=2).warnings == ()
    bf16 = estimate_run(_config(bf16=True), work, fast, "cpu", threads=2)
    assert any("--bf16" in w for w in bf16.warnings)


def test_seconds_read_as_seconds_minutes_or_hours() -> None:
    assert format_seconds(42) == "42 s"
    assert format_seconds(600) == "10 min"
    assert format_seconds(3 * 3600 + 5 * 60) == "3 h 05 min"
