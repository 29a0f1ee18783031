"""The fast/slow split in tests/conftest.py: every entry names a real path, and the marker
lands on the tests it names and on no others."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT, SLOW, slow_reason


def test_every_slow_entry_names_an_existing_path() -> None:
    def exists(entry: str) -> bool:
        path, _, test = entry.partition("::")
        if not (ROOT / path).exists():
            return False
        return not test or f"def {test}(" in (ROOT / path).read_text()

    missing = [entry for entry in SLOW if not exists(entry)]
    assert missing == [], "renamed or deleted: update SLOW in tests/conftest.py"


def test_slow_reason_matches_folders_files_and_single_tests() -> None:
    assert slow_reason("tests/e2e/test_demo.py::test_anything[chromium]") is not None
    assert slow_reason("tests/worker/test_retry.py::test_x") is not None
    assert slow_reason("tests/worker/test_retry_more.py::test_x") is None
    assert slow_reason("tests/engine/test_superpixels.py::test_x") is None


def test_quick_tier_deselects_exactly_the_slow_tests() -> None:
    def collected(*args: str) -> set[str]:
        result = subprocess.run(
            [sys.executable, "-m", "pytest", "--collect-only", "-q", *args, "tests/deploy"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        return {line for line in result.stdout.splitlines() if "::" in line}

    every, quick = collected(), collected("-m", "not slow")
    assert quick and quick < every
    assert {t for t in every - quick if slow_reason(t) is None} == set()
    assert {t for t in quick if slow_reason(t) is not None} == set()
