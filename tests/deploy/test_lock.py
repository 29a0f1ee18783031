"""The lock files in requirements/ match pyproject.toml, pin every package with its hashes,
and are what set-up and the images install; the .venv under test holds dev.txt's versions."""

from __future__ import annotations

import importlib.util
import re
import sys
import tomllib
from importlib import metadata
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+?)(?:\s*;.*?)?\s*\\?$")


def _lock_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("tessera_lock", ROOT / "scripts" / "lock.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


LOCK = _lock_script()
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def parse_lock(text: str) -> dict[str, tuple[Version, int]]:
    """Package name → (pinned version, number of hashes)."""
    pins: dict[str, tuple[Version, int]] = {}
    current: str | None = None
    for line in text.splitlines():
        match = _PIN.match(line)
        if match:
            current = canonicalize_name(match.group(1))
            pins[current] = (Version(match.group(2)), 0)
        elif current is not None and line.strip().startswith("--hash=sha256:"):
            version, hashes = pins[current]
            pins[current] = (version, hashes + 1)
        elif line and not line.startswith((" ", "#")):
            raise AssertionError(f"not a pinned requirement: {line!r}")
    return pins


def _direct_requirements(extras: tuple[str, ...]) -> list[Requirement]:
    project = PYPROJECT["project"]
    lines = list(project["dependencies"])
    for extra in extras:
        lines += project["optional-dependencies"][extra]
    return [r for r in map(Requirement, lines) if r.marker is None or r.marker.evaluate()]


@pytest.mark.parametrize("lock", LOCK.LOCKS, ids=lambda lock: lock.name)
def test_lock_was_made_from_the_current_pyproject(lock: Any) -> None:
    text = lock.path.read_text()
    recorded = LOCK.recorded_digest(text)
    expected = LOCK.dependency_digest(PYPROJECT, lock.extras)
    assert recorded == expected, (
        f"{lock.path.name} is out of date with pyproject.toml: run `make lock`"
    )


@pytest.mark.parametrize("lock", LOCK.LOCKS, ids=lambda lock: lock.name)
def test_lock_pins_every_requirement_with_hashes(lock: Any) -> None:
    pins = parse_lock(lock.path.read_text())
    assert pins
    unhashed = [name for name, (_, hashes) in pins.items() if hashes == 0]
    assert unhashed == []
    for requirement in _direct_requirements(lock.extras):
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement} is not in {lock.path.name}: run `make lock`"
        version = pins[name][0]
        assert requirement.specifier.contains(version, prereleases=True), (
            f"{lock.path.name} pins {name}=={version}, pyproject.toml asks {requirement}"
        )


def test_api_lock_has_no_torch_and_the_worker_image_gets_the_cuda_build() -> None:
    api = parse_lock((ROOT / "requirements" / "api.txt").read_text())
    assert "torch" not in api
    cuda = parse_lock((ROOT / "requirements" / "worker-cuda.txt").read_text())
    assert cuda["torch"][0].local is None  # PyPI's default Linux wheel: the CUDA build
    assert any(name.startswith("nvidia-") for name in cuda)
    dev = parse_lock((ROOT / "requirements" / "dev.txt").read_text())
    assert dev["torch"][0].local == "cpu"
    assert dev["torch"][0].public == cuda["torch"][0].public


def test_setup_and_images_install_from_the_locks() -> None:
    setup = (ROOT / "scripts" / "setup.sh").read_text()
    assert "--require-hashes -r requirements/dev.txt" in setup
    for image, lock in (("api", "api"), ("worker", "worker-cuda")):
        dockerfile = (ROOT / "docker" / f"{image}.Dockerfile").read_text()
        assert f"requirements/{lock}.txt" in dockerfile
        assert "--require-hashes" in dockerfile


def test_the_environment_under_test_holds_the_locked_versions() -> None:
    """CI's .venv comes from dev.txt (scripts/setup.sh): a package installed at another
    version means the lock was bypassed or is stale."""
    differing = {}
    for name, (version, _) in parse_lock((ROOT / "requirements" / "dev.txt").read_text()).items():
        try:
            installed = Version(metadata.version(name))
        except metadata.PackageNotFoundError:
            differing[name] = "not installed"
            continue
        if installed != version:
            differing[name] = f"{installed} installed, {version} locked"
    assert differing == {}
