"""The test tiers. `make test-quick` (pytest -m "not slow") leaves out what is listed here;
`make test` (CI) runs everything.

A test is slow when it starts something heavy for itself: a browser, a Celery worker
process, a server process, a wheel build, or training on images. The list is kept here, in
one place, so the split can be read and changed at a glance; a folder covers the tests
added to it later. Chosen from `pytest --durations=60` on the shared 2-core machine: what
took over about 20 s there (load average 13-16) or starts a process of its own.
"""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Path from the repository root (a folder, a file, or file::test) → why it is slow.
SLOW: dict[str, str] = {
    "tests/e2e": "a real Chromium, the built UI and a server process per test",
    "tests/deploy/test_compose.py": "starts the API, a worker and Flower as processes",
    "tests/deploy/test_wheel.py": "builds the wheel and installs it into a new venv",
    "tests/backend/test_schemathesis.py": "four schemathesis runs against served processes",
    "tests/worker/test_imported_images.py": "a Celery worker process ingests the images",
    "tests/worker/test_job_logs.py": "a Celery worker process",
    "tests/worker/test_pretrained_model.py": "worker processes train and score (60-160 s)",
    "tests/worker/test_recompute.py": "a worker process recomputes maps and runs a round",
    (
        "tests/worker/test_encoder_zoom_project.py::"
        "test_a_zoom_2_project_caches_zoomed_features_and_trains_from_them"
    ): "a worker process ingests and trains two rounds",
    "tests/worker/test_retry.py": "a worker process fails, then runs a round",
    "tests/worker/test_round_loop.py": "two rounds through a worker process",
    "tests/worker/test_unsent_jobs.py": "waits out job leases with a worker process",
    "tests/worker/test_worker_faults.py": "kills worker processes and waits for recovery",
    "tests/worker/test_worker_limits.py": "worker processes past time and memory limits",
    "tests/worker/test_worker_lost.py": "kills a worker process and waits out its lease",
    "tests/worker/test_worker_process_death.py": "kills a worker's pool process",
    "tests/test_tiers.py::test_quick_tier_deselects_exactly_the_slow_tests": "two pytest runs",
    "tests/simulation/test_simulate_cli.py": "runs `tessera simulate` (training) as a process",
    "tests/simulation/test_simulate_models.py": "runs `tessera simulate` (training) as a process",
    "tests/simulation/test_simulate_options.py": "runs `tessera simulate` (training) as a process",
    "tests/engine/test_training.py::test_training_on_partial_masks_lowers_the_loss": "trains",
    (
        "tests/engine/test_pretrained.py::"
        "test_cached_features_train_score_and_evaluate_like_the_whole_model"
    ): "trains",
    "tests/engine/test_pretrained.py::test_flipped_features_train_with_flipped_masks": "trains",
    (
        "tests/engine/test_pretrained.py::"
        "test_early_stopping_on_held_out_features_records_iterations"
    ): "trains",
    "tests/backend/test_authz_matrix.py": "every route for every role, on both databases",
    (
        "tests/backend/test_export.py::"
        "test_export_of_many_images_streams_chunked_through_a_real_server"
    ): "a server process",
    "tests/backend/test_hostile_inputs.py": "300 hostile requests per database",
    (
        "tests/backend/test_login_throttling.py::test_unknown_email_is_answered_like_a_known_one"
    ): "parallel argon2 guesses through a server process",
    "tests/backend/test_server.py": "a server process under a crowd of saves",
}


def slow_reason(nodeid: str) -> str | None:
    """Why the test ``nodeid`` (relative to the repository root) is slow; None if it is not."""
    path = nodeid.split("::", 1)[0]
    for entry, reason in SLOW.items():
        if "::" in entry:
            if nodeid == entry or nodeid.startswith(entry + "["):
                return reason
        elif path == entry or path.startswith(entry + "/"):
            return reason
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        nodeid = Path(item.path).relative_to(ROOT).as_posix()
        if "::" in item.nodeid:
            nodeid += "::" + item.nodeid.split("::", 1)[1]
        if slow_reason(nodeid) is not None:
            item.add_marker(pytest.mark.slow)
