"""Dependencies point one way: core ← backend, core ← worker; demo → (backend, worker, core);
the ``tessera`` command (the composition root) → all of them. Checked on the source (AST),
counting ``import`` statements and module paths written as strings (``"pkg.module:attr"``, or
given to ``importlib.import_module``), so a lazy import cannot hide a dependency."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("core", "backend", "worker", "demo", "tessera")
# package -> the first-party packages it must never import
FORBIDDEN: dict[str, set[str]] = {
    "core": {"backend", "worker", "demo", "tessera"},
    "backend": {"worker", "demo", "tessera"},
    "worker": {"backend", "demo", "tessera"},
    "demo": {"tessera"},
    "tessera": set(),
}
# Imports still crossing a boundary, each with the reason; the test fails when one is gone,
# so the list only shrinks. None left.
KNOWN_CROSSINGS: set[tuple[str, str]] = set()


def _module_strings(node: ast.AST) -> list[str]:
    """Module names a string names: ``"pkg.mod:attr"`` entry points, or the argument of
    ``importlib.import_module(...)`` / ``__import__(...)``."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        text = node.value
        if ":" in text and " " not in text and text.split(":")[0].replace(".", "").isidentifier():
            head = text.split(":")[0]
            if "." in head:
                return [head]
    if isinstance(node, ast.Call) and node.args:
        function = node.func
        name = (
            function.attr
            if isinstance(function, ast.Attribute)
            else function.id
            if isinstance(function, ast.Name)
            else ""
        )
        first = node.args[0]
        if name in ("import_module", "__import__") and isinstance(first, ast.Constant):
            return [str(first.value)]
    return []


def imported_modules(path: Path) -> list[str]:
    """Every absolute module name ``path`` imports or names as a module string."""
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append(node.module)
        else:
            names += _module_strings(node)
    return names


def crossings() -> set[tuple[str, str]]:
    found: set[tuple[str, str]] = set()
    for package, forbidden in FORBIDDEN.items():
        for path in sorted((REPO / package).rglob("*.py")):
            for name in imported_modules(path):
                if name.split(".")[0] in forbidden:
                    found.add((str(path.relative_to(REPO)), name))
    return found


def test_the_checker_sees_lazy_imports_and_module_strings(tmp_path: Path) -> None:
    source = tmp_path / "sample.py"
    source.write_text(
        "import importlib\n"
        "def f():\n"
        "    from worker.tasks import ingest\n"
        "    importlib.import_module('demo.run')\n"
        "COMMANDS = {'serve': ('demo.command:serve', 'Run: the API.')}\n"
    )
    assert set(imported_modules(source)) == {
        "importlib",
        "worker.tasks",
        "demo.run",
        "demo.command",
    }


def test_packages_import_only_in_one_direction() -> None:
    found = crossings()
    unexpected = sorted(found - KNOWN_CROSSINGS)
    assert not unexpected, f"imports against the dependency direction: {unexpected}"
    gone = sorted(KNOWN_CROSSINGS - found)
    assert not gone, f"remove from KNOWN_CROSSINGS, they no longer happen: {gone}"


def test_every_package_is_checked() -> None:
    on_disk = {p.parent.name for p in REPO.glob("*/__init__.py")} - {"tests", "migrations"}
    assert on_disk <= set(PACKAGES), f"packages without a dependency rule: {on_disk}"


def test_plain_serve_loads_neither_the_worker_nor_the_demo_machinery() -> None:
    """``tessera serve`` (an API container) resolves its command without the worker, the
    demo's server or torch; ``--demo`` imports them only when it runs."""
    program = (
        "import sys\n"
        "import click\n"
        "from tessera.cli import main\n"
        "command = main.get_command(click.Context(main), 'serve')\n"
        "assert any(p.name == 'demo' for p in command.params)\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('worker', 'torch') "
        "or m in ('demo.run', 'demo.seeder', 'demo.worker_process', 'backend.app'))\n"
        "print(','.join(loaded))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, check=True, cwd=REPO
    )
    assert result.stdout.strip() == ""
