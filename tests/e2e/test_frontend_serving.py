"""FastAPI serves the built front end: assets, index.html for browser paths, API 404s intact."""

from __future__ import annotations

from pathlib import Path

import httpx
from fastapi.testclient import TestClient

from backend.app import create_app
from core.settings import Settings
from tests.e2e.server import Server


def test_browser_paths_get_the_app_and_api_paths_keep_their_errors(
    server: Server, frontend_dist: Path
) -> None:
    index = (frontend_dist / "index.html").read_text()
    for path in ("/", "/login", "/projects/7/label", "/label?next=x"):
        response = httpx.get(f"{server.base_url}{path}")
        assert response.status_code == 200, path
        assert response.text == index
        assert response.headers["cache-control"] == "no-cache"
    asset = next((frontend_dist / "assets").glob("*.js"))
    response = httpx.get(f"{server.base_url}/assets/{asset.name}")
    assert response.status_code == 200
    assert response.content == asset.read_bytes()
    assert httpx.get(f"{server.base_url}/assets/missing.js").status_code == 404
    missing = httpx.get(f"{server.base_url}/api/v1/missing")
    assert missing.status_code == 404
    assert missing.json() == {"detail": "Not Found"}
    assert httpx.get(f"{server.base_url}/api/v1/auth/login").status_code == 405
    assert httpx.post(f"{server.base_url}/label").status_code == 404


def test_without_a_build_browser_paths_say_how_to_build(tmp_path: Path) -> None:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'tessera.db'}",
        data_dir=tmp_path,
        frontend_dist_dir=tmp_path / "no-dist",
    )
    with TestClient(create_app(settings)) as client:
        response = client.get("/projects/1/label")
        assert response.status_code == 503
        assert "scripts/frontend.sh" in response.text
        assert client.get("/api/v1/health").json() == {"status": "ok"}
