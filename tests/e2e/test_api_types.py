"""The front end's hand-typed API interfaces (frontend/src/api/types.ts) name exactly the fields
the OpenAPI schema of the running code has, so a backend schema change cannot drift silently."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from backend.app import create_app
from core.settings import Settings
from tests.e2e.server import REPO

TYPES = REPO / "frontend" / "src" / "api" / "types.ts"
# TypeScript interface -> the response schema it mirrors.
MIRRORS = {
    "User": "UserRead",
    "LabelClass": "ClassRead",
    "Project": "ProjectRead",
    "ProjectDetail": "ProjectDetail",
    "Task": "Task",
    "TaskLinks": "TaskLinks",
    "SaveResult": "SaveResult",
    "MaskEditRequest": "MaskEditBody",
}
_INTERFACE = re.compile(r"export interface (\w+)(?: extends ([\w, ]+))? \{(.*?)\n\}", re.S)
_FIELD = re.compile(r"^\s+(\w+)\??:", re.M)


def typescript_fields(source: str) -> dict[str, set[str]]:
    """Interface name -> its field names, inherited ones included."""
    own: dict[str, tuple[set[str], list[str]]] = {}
    for name, parents, body in _INTERFACE.findall(source):
        bases = [p.strip() for p in parents.split(",")] if parents else []
        own[name] = (set(_FIELD.findall(body)), bases)

    def resolve(name: str) -> set[str]:
        fields, bases = own[name]
        return fields.union(*(resolve(base) for base in bases))

    return {name: resolve(name) for name in own}


def test_typescript_interfaces_match_the_openapi_schemas(tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'unused.db'}", data_dir=tmp_path)
    schemas: dict[str, Any] = create_app(settings).openapi()["components"]["schemas"]
    fields = typescript_fields(TYPES.read_text())
    for interface, schema in MIRRORS.items():
        assert fields[interface] == set(schemas[schema]["properties"]), (
            f"{interface} in {TYPES.name} differs from the API's {schema}"
        )
