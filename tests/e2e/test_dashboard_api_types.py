"""The dashboard's hand-typed API interfaces (frontend/src/dashboard/api.ts) name exactly the
fields of the OpenAPI schemas they mirror, so a backend change cannot drift silently."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from backend.app import create_app
from core.settings import Settings
from tests.e2e.server import REPO
from tests.e2e.test_api_types import typescript_fields

TYPES = REPO / "frontend" / "src" / "dashboard" / "api.ts"
MIRRORS = {
    "BudgetLine": "BudgetLine",
    "Budget": "Budget",
    "CurvePoint": "CurvePoint",
    "Projection": "Projection",
    "SimulatedPoint": "SimulatedPoint",
    "SimulatedCurve": "SimulatedCurve",
    "LearningCurve": "LearningCurve",
    "RoundRow": "RoundRow",
    "ClassShare": "ClassShare",
    "ClassBalance": "ClassBalance",
    "TeamMember": "TeamMember",
    "JobRead": "JobRead",
    "CurrentRound": "CurrentRound",
    "Jobs": "Jobs",
    "Dashboard": "Dashboard",
    "SimulationRead": "SimulationRead",
    "MemberRead": "MemberRead",
}


def test_dashboard_interfaces_match_the_openapi_schemas(tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'unused.db'}", data_dir=tmp_path)
    schemas: dict[str, Any] = create_app(settings).openapi()["components"]["schemas"]
    fields = typescript_fields(TYPES.read_text())
    for interface, schema in MIRRORS.items():
        assert fields[interface] == set(schemas[schema]["properties"]), (
            f"{interface} in {TYPES.name} differs from the API's {schema}"
        )
