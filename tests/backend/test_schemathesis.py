"""Schemathesis against a real ``tessera serve``, as an administrator (a lead of every project)
and as an annotator, on SQLite and on PostgreSQL: no 5xx, and every answer matches the
published OpenAPI schema (status codes, content types, bodies, headers).

It runs the schemathesis CLI (all four phases: the schema's examples, coverage of boundary
and invalid values, random fuzzing, and stateful sequences that feed one response's ids into
the next request), so the requests are real HTTP through uvicorn. The caller's token comes
from tests/backend/schemathesis_hooks.py, which restores the caller whenever schemathesis has
taken its access away (it deletes its own token, changes its password, ...).

Budget: ``--max-examples`` per operation and phase, seed fixed so a failure replays; the four
runs take about three minutes on two cores. ``TESSERA_FUZZ_EXAMPLES`` raises the budget for a
longer hunt (e.g. 200), ``TESSERA_FUZZ_SEED`` changes the seed.

Checks left out, and why: ``positive_data_acceptance`` expects every schema-valid request to
succeed, but a schema cannot say that an upload must be a readable image, that a round must
be labeling or that a mask save needs If-Match (428 is its documented answer), so it flags
correct refusals; ``negative_data_rejection`` flags pydantic's documented lax coercions
(``0`` accepted for ``false``, ``"32"`` for ``32``), which are neither errors nor answers
that break the schema; ``ensure_resource_availability`` trusts schemathesis' inferred links,
which fill ``project_id`` from a created project's ``classes[0].id`` and then report the
404 for a project that never existed; ``max_response_time`` is a timing, which belongs in
bench/.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from core.db import make_engine, make_session_factory
from core.migrate import upgrade_database
from core.models import Split
from core.settings import Settings
from tests.backend.builders import World
from tests.backend.test_server import running_server
from tests.services import fresh_database

SEED = int(os.environ.get("TESSERA_FUZZ_SEED", "20261201"))
EXAMPLES = int(os.environ.get("TESSERA_FUZZ_EXAMPLES", "6"))
SECRET_KEY = "schemathesis-" + "k" * 40
CHECKS = [
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
    "missing_required_header",
    "unsupported_method",
    "allow_header_conformance",
    "use_after_free",
    "ignored_auth",
]


@dataclass(frozen=True)
class Fuzzed:
    requests: int
    failures: Counter[tuple[str, str, int | None]]
    examples: dict[tuple[str, str, int | None], str]
    output: str


def seed_world(settings: Settings) -> tuple[int, str, str]:
    """A project in mid-labeling: classes, images with superpixels and ground truth, a
    labeling round with queries, a job and a model. Returns (project id, lead, annotator)."""
    engine = make_engine(settings.resolved_database_url)
    try:
        world = World(make_session_factory(engine), settings)
        lead = world.user("lead@example.org", admin=True)
        annotator = world.user("ann@example.org")
        project = world.project(lead, annotators=(annotator,))
        round_ = world.round(project)
        for index in range(3):
            image = world.image(project, width=32, height=24)
            world.superpixel_grid(image, cell=8)
            world.query(round_, image, [0, 1, 5])
            if index == 0:
                world.ground_truth(image, np.zeros((24, 32), np.uint8))
        world.image(project, split=Split.validation)
        world.job(project)
        world.model(project, round_)
        return project, lead.email, annotator.email
    finally:
        engine.dispose()


def run_schemathesis(base: str, env: dict[str, str], report: Path) -> Fuzzed:
    command = [
        str(Path(sys.executable).parent / "schemathesis"),
        "run",
        f"{base}/api/v1/openapi.json",
        "--checks",
        ",".join(CHECKS),
        "--max-examples",
        str(EXAMPLES),
        "--seed",
        str(SEED),
        "--workers",
        "1",
        "--generation-database",
        "none",
        "--request-timeout",
        "60",
        "--no-color",
        "--report",
        "ndjson",
        "--report-ndjson-path",
        str(report),
    ]
    finished = subprocess.run(
        command,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=900,
    )
    output = finished.stdout + finished.stderr
    assert report.exists(), output[-4000:]
    return summarize(report, output)


def summarize(report: Path, output: str) -> Fuzzed:
    """Requests sent and failed checks, from schemathesis' NDJSON event log."""
    requests = 0
    failures: Counter[tuple[str, str, int | None]] = Counter()
    examples: dict[tuple[str, str, int | None], str] = {}
    for line in report.read_text().splitlines():
        event = json.loads(line)
        finished = event.get("ScenarioFinished")
        if finished is None:
            continue
        recorder = finished["recorder"]
        interactions = recorder.get("interactions", {})
        requests += len(interactions)
        for case_id, checks in recorder.get("checks", {}).items():
            case = recorder["cases"][case_id]["value"]
            response = (interactions.get(case_id) or {}).get("response") or {}
            content = base64.b64decode((response.get("content") or {}).get("$base64", ""))
            for check in checks:
                if check["status"] == "success":
                    continue
                key = (
                    check["name"],
                    f"{case['method']} {case['path']}",
                    response.get("status_code"),
                )
                failures[key] += 1
                examples.setdefault(
                    key,
                    json.dumps(
                        {
                            name: case.get(name)
                            for name in ("path_parameters", "query", "headers", "body")
                        },
                        default=str,
                    )[:300]
                    + f" => {content[:200]!r}",
                )
    return Fuzzed(requests, failures, examples, output)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_kind(request: pytest.FixtureRequest) -> str:
    kind: str = request.param
    return kind


@pytest.fixture
def fresh_url(database_kind: str, tmp_path: Path) -> Iterator[str]:
    with fresh_database(database_kind, tmp_path, prefix="tessera_fuzz") as url:
        yield url


@pytest.mark.slow
@pytest.mark.parametrize("role", ["lead", "annotator"])
def test_schemathesis_finds_no_server_error_and_no_schema_violation(
    fresh_url: str, role: str, tmp_path: Path
) -> None:
    settings = Settings(database_url=fresh_url, data_dir=tmp_path / "data", secret_key=SECRET_KEY)
    upgrade_database(settings)
    project, lead, annotator = seed_world(settings)
    server_env = {
        "TESSERA_DATABASE_URL": fresh_url,
        "TESSERA_DATA_DIR": str(tmp_path / "data"),
        "TESSERA_SECRET_KEY": SECRET_KEY,
        # Round jobs go to a queue no worker reads (the broker itself is real Redis).
        "TESSERA_BROKER_URL": "redis://127.0.0.1:6379/15",
        "TESSERA_TASK_QUEUE": f"tessera-fuzz-{os.getpid()}",
    }
    hooks_env = {
        **server_env,
        "SCHEMATHESIS_HOOKS": "tests.backend.schemathesis_hooks",
        "TESSERA_TEST_ACTOR": lead if role == "lead" else annotator,
        "TESSERA_TEST_ROLE": role,
        "TESSERA_TEST_PROJECT_ID": str(project),
        "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
    }
    with running_server(server_env, tmp_path / "server.log") as base:
        fuzzed = run_schemathesis(base, hooks_env, tmp_path / "events.ndjson")
    log = (tmp_path / "server.log").read_text()
    print(
        f"schemathesis {role} on {fresh_url.split(':')[0]}: {fuzzed.requests} requests, "
        f"{sum(fuzzed.failures.values())} failed checks, seed {SEED}, {EXAMPLES} examples"
    )
    assert fuzzed.requests > 300, fuzzed.output[-4000:]
    assert "Traceback" not in log, log[log.index("Traceback") :][:4000]
    report = "\n".join(
        f"{count:4d} x {check} {operation} -> {code}: {fuzzed.examples[(check, operation, code)]}"
        for (check, operation, code), count in sorted(fuzzed.failures.items())
    )
    assert not fuzzed.failures, f"schemathesis (seed {SEED}) found:\n{report}"
