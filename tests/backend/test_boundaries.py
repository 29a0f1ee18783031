"""The API side never loads torch or the method engine (API containers carry no CUDA)."""

from __future__ import annotations

import subprocess
import sys


def test_backend_imports_neither_torch_nor_the_engine() -> None:
    program = (
        "import sys, pkgutil, importlib, backend\n"
        "for module in pkgutil.walk_packages(backend.__path__, 'backend.'):\n"
        "    importlib.import_module(module.name)\n"
        "from backend.app import create_app\n"
        "from core.settings import Settings\n"
        "create_app(Settings(database_url='sqlite://'))\n"
        "bad = sorted(m for m in sys.modules if m == 'torch' or m.startswith(('torch.', "
        "'worker.engine', 'skimage')))\n"
        "print(','.join(bad))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""


def test_settings_module_has_no_import_side_effects() -> None:
    program = "import core.settings as s\nprint(s.get_settings.cache_info().currsize)\n"
    result = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "0"


def test_every_setting_is_documented() -> None:
    from pathlib import Path

    from core.settings import Settings

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    missing = [
        f"TESSERA_{name.upper()}"
        for name in Settings.model_fields
        if f"`TESSERA_{name.upper()}`" not in readme
    ]
    assert not missing, f"settings missing from README.md: {missing}"


def test_services_import_no_web_framework() -> None:
    """Services raise domain errors (core.errors); HTTP lives in routers and one handler."""
    import ast
    from pathlib import Path

    backend = Path(__file__).resolve().parents[2] / "backend"
    services = sorted(backend.rglob("service.py"))
    assert len(services) >= 5
    offending: list[str] = []
    for path in services:
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [alias.name for alias in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            offending += [
                f"{path.relative_to(backend.parent)}: {name}"
                for name in names
                if name.split(".")[0] in {"fastapi", "starlette"}
            ]
    assert not offending, offending


def test_domain_errors_answer_with_their_status_and_detail() -> None:
    from fastapi.testclient import TestClient

    from backend.app import create_app
    from core.errors import Conflict, DomainError, InvalidInput, NotFound
    from core.settings import Settings

    app = create_app(Settings(database_url="sqlite://"))
    refusals: dict[str, DomainError] = {
        "conflict": Conflict("Round 3 is still training; close it first."),
        "missing": NotFound("No image 7 in this project."),
        "invalid": InvalidInput("line 2: expected a JSON object."),
    }

    @app.get("/refuse/{kind}")
    def refuse(kind: str) -> None:
        raise refusals[kind]

    client = TestClient(app)
    for kind, error in refusals.items():
        answer = client.get(f"/refuse/{kind}")
        assert answer.status_code == error.status_code
        assert answer.json() == {"detail": error.message}
    assert [e.status_code for e in refusals.values()] == [409, 404, 422]


def test_kernel_imports_neither_the_api_nor_the_worker() -> None:
    """core/ is what both sides share; it must not reach back into either of them."""
    import ast
    from pathlib import Path

    kernel = Path(__file__).resolve().parents[2] / "core"
    offending: list[str] = []
    for path in sorted(kernel.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [alias.name for alias in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom) and node.level == 0
                else []
            )
            offending += [
                f"{path.relative_to(kernel.parent)}: {name}"
                for name in names
                if name.split(".")[0] in {"backend", "worker", "fastapi", "starlette", "torch"}
            ]
    assert not offending, offending
