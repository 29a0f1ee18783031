"""Regenerates the front end's API types from the API's OpenAPI document, without a server.

    .venv/bin/python scripts/api_types.py           # writes frontend/openapi.json and
                                                    # frontend/src/api/schema.d.ts
    .venv/bin/python scripts/api_types.py --check   # exits 1 with a diff when they are stale

The document is the one `tessera serve` answers at /api/v1/openapi.json; openapi-typescript
(a dev dependency of frontend/, so `npm ci` first) turns it into TypeScript. Both files are
checked in: the Docker image builds the front end with Node alone.
"""

from __future__ import annotations

import argparse
import difflib
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
FRONTEND = REPO / "frontend"
OPENAPI_JSON = Path("openapi.json")
SCHEMA_TS = Path("src/api/schema.d.ts")
GENERATOR = FRONTEND / "node_modules" / ".bin" / "openapi-typescript"


def openapi_document() -> dict[str, Any]:
    """The API's OpenAPI document, from an app that touches no real database or data dir."""
    # Imported here so `--help` works without the backend's dependencies.
    from backend.app import create_app
    from core.settings import Settings

    with tempfile.TemporaryDirectory() as data_dir:
        settings = Settings(database_url="sqlite://", data_dir=Path(data_dir))
        return create_app(settings).openapi()


def render_document(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def generate(out_dir: Path) -> list[Path]:
    """Writes openapi.json and src/api/schema.d.ts under `out_dir` (laid out as frontend/);
    returns their paths relative to it."""
    if not GENERATOR.exists():
        raise SystemExit(f"{GENERATOR} is missing: run `npm ci` in frontend/ first")
    (out_dir / OPENAPI_JSON).write_text(render_document(openapi_document()))
    (out_dir / SCHEMA_TS).parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [str(GENERATOR), str(out_dir / OPENAPI_JSON), "--output", str(out_dir / SCHEMA_TS)],
        check=True,
        capture_output=True,
        text=True,
    )
    return [OPENAPI_JSON, SCHEMA_TS]


def stale_files(fresh_dir: Path) -> str:
    """A unified diff of each checked-in file against its fresh copy in `fresh_dir`; empty
    when they all match."""
    diffs: list[str] = []
    for relative in generate(fresh_dir):
        committed = FRONTEND / relative
        old = committed.read_text().splitlines(keepends=True) if committed.exists() else []
        new = (fresh_dir / relative).read_text().splitlines(keepends=True)
        diffs.extend(
            difflib.unified_diff(old, new, f"frontend/{relative} (checked in)", "(generated)")
        )
    return "".join(diffs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check", action="store_true", help="fail with a diff instead of writing the files"
    )
    args = parser.parse_args()
    if not args.check:
        for relative in generate(FRONTEND):
            print(f"wrote frontend/{relative}")
        return
    with tempfile.TemporaryDirectory() as fresh:
        diff = stale_files(Path(fresh))
    if diff:
        sys.stdout.write(diff)
        sys.exit("API types are stale: run .venv/bin/python scripts/api_types.py")
    print("frontend/openapi.json and frontend/src/api/schema.d.ts match the API")


if __name__ == "__main__":
    main()
