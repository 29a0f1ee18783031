"""Regenerates the lock files in requirements/ from pyproject.toml: `make lock`.

    requirements/dev.txt          dependencies + worker (PyTorch's CPU wheel) + monitor + dev:
                                  scripts/setup.sh, so CI and `make run`
    requirements/api.txt          dependencies only: docker/api.Dockerfile
    requirements/worker-cuda.txt  dependencies + worker (PyPI's CUDA build of torch) + monitor:
                                  docker/worker.Dockerfile

Every pin carries its sha256 hashes (pip's --require-hashes mode). The first line of each
file records a digest of the pyproject.toml entries it was made from, and
tests/deploy/test_lock.py fails when pyproject.toml no longer matches it.

dev.txt keeps its pins unless asked (`make lock ARGS=--upgrade`, or
`ARGS="--upgrade-package celery"`); api.txt and worker-cuda.txt start from dev.txt's pins, so
the images run the versions CI tested. worker-cuda.txt is resolved against the registry only
(no local wheels), so torch is the CUDA build; pip-compile downloads each CUDA wheel once to
hash it (several GB).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REQUIREMENTS = ROOT / "requirements"
DIGEST_PREFIX = "# pyproject.toml digest: "


@dataclass(frozen=True)
class Lock:
    name: str
    extras: tuple[str, ...]
    # True: the registry alone (pip's configured local wheel folders are left out).
    registry_only: bool = False

    @property
    def path(self) -> Path:
        return REQUIREMENTS / f"{self.name}.txt"


LOCKS = (
    Lock("dev", ("worker", "monitor", "dev")),
    Lock("api", ()),
    Lock("worker-cuda", ("worker", "monitor"), registry_only=True),
)


def dependency_digest(pyproject: dict[str, object], extras: tuple[str, ...]) -> str:
    """sha256 of the entries a lock is resolved from (comments and order of tables aside)."""
    project = pyproject["project"]
    assert isinstance(project, dict)
    optional = project.get("optional-dependencies", {})
    payload = {
        "requires-python": project.get("requires-python"),
        "dependencies": project.get("dependencies", []),
        "extras": {extra: optional[extra] for extra in extras},
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def recorded_digest(lock_text: str) -> str | None:
    first = lock_text.splitlines()[0] if lock_text else ""
    return first.removeprefix(DIGEST_PREFIX) if first.startswith(DIGEST_PREFIX) else None


def _without_pin(lock_text: str, package: str) -> str:
    """The lock's text less one pin and its hash lines (a pin the other lock cannot take)."""
    kept: list[str] = []
    skipping = False
    for line in lock_text.splitlines():
        if line.startswith(f"{package}=="):
            skipping = True
            continue
        if skipping and (line.startswith((" ", "\t")) or not line.strip()):
            continue
        skipping = False
        kept.append(line)
    return "\n".join(kept) + "\n"


def compile_lock(lock: Lock, pyproject: dict[str, object], extra_args: list[str]) -> None:
    if lock.name != "dev":
        seed = (REQUIREMENTS / "dev.txt").read_text()
        if lock.registry_only:
            seed = _without_pin(seed, "torch")  # dev's is the local CPU wheel
        lock.path.write_text(seed)
    env = {**os.environ, "CUSTOM_COMPILE_COMMAND": "make lock"}  # the files' header names it
    if lock.registry_only:
        env.pop("PIP_FIND_LINKS", None)
        env["PIP_CONFIG_FILE"] = os.devnull
    command = [
        str(Path(sys.executable).parent / "pip-compile"),
        "--quiet",
        "--generate-hashes",
        "--allow-unsafe",
        "--strip-extras",
        "--no-emit-index-url",
        "--no-emit-find-links",
        *(f"--extra={extra}" for extra in lock.extras),
        "--output-file",
        str(lock.path.relative_to(ROOT)),
        *(extra_args if lock.name == "dev" else []),
        "pyproject.toml",
    ]
    print(f"lock: {lock.path.relative_to(ROOT)}", flush=True)
    subprocess.run(command, cwd=ROOT, env=env, check=True)
    text = lock.path.read_text()
    if recorded_digest(text) is not None:
        text = text.split("\n", 1)[1]
    digest = dependency_digest(pyproject, lock.extras)
    lock.path.write_text(f"{DIGEST_PREFIX}{digest}\n{text}")


def main(argv: list[str]) -> int:
    REQUIREMENTS.mkdir(exist_ok=True)
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    names = [a.removeprefix("--only=") for a in argv if a.startswith("--only=")]
    extra_args = [a for a in argv if not a.startswith("--only=")]
    for lock in LOCKS:
        if not names or lock.name in names:
            compile_lock(lock, pyproject, extra_args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
