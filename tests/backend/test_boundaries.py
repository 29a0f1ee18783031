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
        "from backend.settings import Settings\n"
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
    program = "import backend.settings as s\nprint(s.get_settings.cache_info().currsize)\n"
    result = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "0"


def test_every_setting_is_documented() -> None:
    from pathlib import Path

    from backend.settings import Settings

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    missing = [
        f"TESSERA_{name.upper()}"
        for name in Settings.model_fields
        if f"`TESSERA_{name.upper()}`" not in readme
    ]
    assert not missing, f"settings missing from README.md: {missing}"
