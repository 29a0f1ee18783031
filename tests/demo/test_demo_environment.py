"""The demo's defaults fill only what the user left unset, its secret key survives a restart,
and ``tessera serve`` carries the demo's options without the backend knowing them."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from core.settings import get_settings
from demo.environment import DEMO_WORKER_DEFAULTS, STATE_FILE, prepare_demo_environment
from tessera.cli import main


@pytest.fixture
def clean_environ(tmp_path: Path) -> Iterator[Path]:
    """This process's environment without the demo's variables; restored whole afterwards
    (``prepare_demo_environment`` adds variables, which monkeypatch would not take back)."""
    saved = dict(os.environ)
    for name in [*DEMO_WORKER_DEFAULTS, "TESSERA_SECRET_KEY"]:
        os.environ.pop(name, None)
    os.environ["TESSERA_DATA_DIR"] = str(tmp_path)
    get_settings.cache_clear()
    try:
        yield tmp_path
    finally:
        os.environ.clear()
        os.environ.update(saved)
        get_settings.cache_clear()


def test_demo_defaults_fill_only_unset_variables(
    clean_environ: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    monkeypatch.setenv("TESSERA_TRAIN_ITERATIONS", "7")
    applied = prepare_demo_environment(os.environ)
    assert "OMP_NUM_THREADS" not in applied and os.environ["OMP_NUM_THREADS"] == "3"
    assert "TESSERA_TRAIN_ITERATIONS" not in applied
    assert get_settings().train_iterations == 7
    assert (
        applied["TESSERA_FINETUNE_ITERATIONS"]
        == DEMO_WORKER_DEFAULTS["TESSERA_FINETUNE_ITERATIONS"]
    )
    assert get_settings().finetune_iterations == int(applied["TESSERA_FINETUNE_ITERATIONS"])


def test_demo_worker_runs_one_torch_thread_unless_told_otherwise(clean_environ: Path) -> None:
    applied = prepare_demo_environment(os.environ)
    assert applied["OMP_NUM_THREADS"] == "1" and os.environ["OMP_NUM_THREADS"] == "1"


def test_demo_secret_key_is_stored_and_reused(
    clean_environ: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    prepare_demo_environment(os.environ)
    first = os.environ["TESSERA_SECRET_KEY"]
    assert (clean_environ / STATE_FILE).stat().st_mode & 0o777 == 0o600
    monkeypatch.delenv("TESSERA_SECRET_KEY")
    prepare_demo_environment(os.environ)
    assert os.environ["TESSERA_SECRET_KEY"] == first
    assert get_settings().secret_key == first


def test_serve_offers_the_demo_and_refuses_it_with_several_api_processes() -> None:
    help_text = CliRunner().invoke(main, ["serve", "--help"]).output
    assert "--demo" in help_text and "--demo-model" in help_text and "--workers" in help_text
    refused = CliRunner().invoke(main, ["serve", "--demo", "--workers", "2"])
    assert refused.exit_code == 2
    assert "--demo runs one API process" in refused.output
