"""10,000+ hostile requests (tests/hostile.py) against the API on SQLite and PostgreSQL.

For each database: a fresh, migrated database with a lead's project under labeling; the
generator's requests go through the app in process (real ASGI calls, real database), and
after each one the harness checks: no 5xx, no file written outside the data directory, and
an unchanged database (every table's row count and row hash) when the answer is a refusal.
Prints the counts per family and status, what failed, and the time per hostile request
against a baseline measured in the same run (plain ``GET /projects/{id}`` calls with the
same checks after each), so the ratio says what refusing costs next to serving.

    .venv/bin/python bench/hostile_inputs.py [--count 10000] [--seed 1] [--databases sqlite]

Exit status 1 if any check failed.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from contextlib import chdir
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fastapi.testclient import TestClient

from backend.app import create_app
from core.migrate import upgrade_database
from tests.backend.builders import World
from tests.backend.conftest import small_limits
from tests.backend.test_hostile_inputs import seed_target
from tests.hostile import HostileInput, check_inputs, generate_many
from tests.services import fresh_database

BASELINE_REQUESTS = 500


def run(kind: str, count: int, seed: int) -> bool:
    with tempfile.TemporaryDirectory() as directory, chdir(directory):
        sandbox = Path(directory)
        with fresh_database(kind, sandbox, prefix="tessera_hostile") as url:
            settings = small_limits(url, sandbox / "data")
            upgrade_database(settings)
            app = create_app(settings)
            try:
                target, headers = seed_target(World(app.state.session_factory, settings))
                client = TestClient(app, raise_server_exceptions=False)
                plain = (
                    HostileInput("baseline", "GET", f"/api/v1/projects/{target.project}")
                    for _ in range(BASELINE_REQUESTS)
                )
                started = time.perf_counter()
                baseline = check_inputs(
                    client,
                    app.state.engine,
                    plain,
                    headers=headers,
                    sandbox=sandbox,
                    data_dir=settings.data_dir,
                )
                baseline_each = (time.perf_counter() - started) / BASELINE_REQUESTS
                started = time.perf_counter()
                report = check_inputs(
                    client,
                    app.state.engine,
                    generate_many(seed, count, target),
                    headers=headers,
                    sandbox=sandbox,
                    data_dir=settings.data_dir,
                )
                hostile_each = (time.perf_counter() - started) / count
            finally:
                app.state.engine.dispose()
    assert baseline.statuses == {200: BASELINE_REQUESTS}, baseline.statuses
    families: dict[str, int] = {}
    for family, sent in report.by_family.items():
        families[family.split(":")[0]] = families.get(family.split(":")[0], 0) + sent
    print(f"\n## {kind}: {report.sent} hostile inputs (seed {seed})\n")
    print("| family | inputs |\n| --- | ---: |")
    for family, sent in sorted(families.items()):
        print(f"| {family} | {sent} |")
    print(f"\nstatuses: {dict(sorted(report.statuses.items()))}")
    print(f"refused (4xx): {report.refused}, accepted (2xx): {report.sent - report.refused}")
    print(f"5xx: {len(report.server_errors)}")
    print(f"database changed on a refusal: {len(report.changed_on_refusal)}")
    print(f"files outside the data dir: {len(report.escaped_files)}")
    for problem in (report.server_errors + report.changed_on_refusal + report.escaped_files)[:20]:
        print(f"  - {problem}")
    print(
        f"time per request incl. checks: hostile {hostile_each * 1000:.1f} ms, "
        f"baseline GET {baseline_each * 1000:.1f} ms, ratio {hostile_each / baseline_each:.2f}"
    )
    return not (report.server_errors or report.changed_on_refusal or report.escaped_files)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--databases", default="sqlite,postgresql")
    arguments = parser.parse_args()
    kinds = arguments.databases.split(",")
    print(f"load average before: {os.getloadavg()}")
    ok = all([run(kind, arguments.count, arguments.seed) for kind in kinds])
    print(f"\nload average after: {os.getloadavg()}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
