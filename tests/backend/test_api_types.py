"""The front end's API types are generated from the running code's OpenAPI document: the
checked-in frontend/openapi.json and frontend/src/api/schema.d.ts must be what
scripts/api_types.py writes now, and the document must describe answers truthfully."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "api_types.py"


def api_types_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("api_types", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_checked_in_api_types_match_a_fresh_generation(tmp_path: Path) -> None:
    script = api_types_script()
    if not script.GENERATOR.exists():
        pytest.fail(f"{script.GENERATOR} is missing: run `npm ci` in frontend/")
    diff = script.stale_files(tmp_path)
    assert diff == "", (
        "frontend/openapi.json or frontend/src/api/schema.d.ts is stale; run "
        f".venv/bin/python scripts/api_types.py\n{diff[:4000]}"
    )


def test_every_field_of_a_json_answer_is_required() -> None:
    """Answers always carry every field; a default-valued field left out of `required` would
    reach TypeScript as optional (`field?:`), so response models set
    json_schema_serialization_defaults_required."""
    document = api_types_script().openapi_document()
    schemas: dict[str, Any] = document["components"]["schemas"]
    reachable: set[str] = set()

    def collect(node: object) -> None:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str):
                name = ref.rsplit("/", 1)[-1]
                if name not in reachable:
                    reachable.add(name)
                    collect(schemas[name])
            for value in node.values():
                collect(value)
        elif isinstance(node, list):
            for value in node:
                collect(value)

    for operations in document["paths"].values():
        for operation in operations.values():
            for status, answer in operation.get("responses", {}).items():
                if status.startswith("2"):
                    collect(answer)
    assert {"ProjectDetail", "Task", "Dashboard", "JobRead"} <= reachable
    optional = {
        name: sorted(set(schemas[name]["properties"]) - set(schemas[name].get("required", [])))
        for name in sorted(reachable)
        if "properties" in schemas[name]
    }
    assert {name: fields for name, fields in optional.items() if fields} == {}
