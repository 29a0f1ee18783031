"""Serving the built browser UI (``frontend/dist``) next to the API.

Files under ``assets/`` are content-hashed by Vite and cached for a year; every other path
that is not an API or docs path gets ``index.html``, so the front end's router handles deep
links and reloads. Without a build, those paths answer a short page saying how to make one.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, HTTPException, status
from fastapi.responses import FileResponse, HTMLResponse, Response
from fastapi.staticfiles import StaticFiles

from backend.settings import Settings

# The repository's frontend/dist when running from a checkout (or an editable install).
DEFAULT_DIST_DIR = Path(__file__).resolve().parent.parent / "frontend" / "dist"

# Paths the SPA fallback never answers: they belong to the API and its docs.
_RESERVED_PREFIXES = ("api/", "docs", "openapi.json")

NOT_BUILT_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Tessera: front end not built</title></head>
<body style="font-family: system-ui, sans-serif; max-width: 40em; margin: 4em auto">
<h1>The Tessera front end is not built</h1>
<p>The API is running (<a href="/docs">/docs</a>), but <code>{dist}</code> does not exist.</p>
<p>Build it once (Node.js 20 or newer):</p>
<pre>bash scripts/frontend.sh    # npm ci &amp;&amp; npm run build in frontend/</pre>
<p>or point <code>TESSERA_FRONTEND_DIST_DIR</code> at a built copy, then reload.</p>
</body></html>
"""


def resolve_dist_dir(settings: Settings) -> Path:
    return settings.frontend_dist_dir or DEFAULT_DIST_DIR


def mount_frontend(app: FastAPI, settings: Settings) -> None:
    """Adds the static assets and the SPA fallback; call after the API routers."""
    dist = resolve_dist_dir(settings)
    index = dist / "index.html"
    assets = dist / "assets"
    if assets.is_dir():
        app.mount(
            "/assets",
            StaticFiles(directory=assets, check_dir=False),
            name="frontend-assets",
        )

    @app.get("/{path:path}", include_in_schema=False, response_model=None)
    def frontend(path: str) -> Response:
        if path.startswith(_RESERVED_PREFIXES):
            raise HTTPException(status.HTTP_404_NOT_FOUND, "Not Found")
        if not index.is_file():
            return HTMLResponse(NOT_BUILT_PAGE.format(dist=dist), status_code=503)
        # A top-level file of the build (favicon, robots.txt), never anything outside dist.
        if path and "/" not in path and not path.startswith("."):
            candidate = dist / path
            if candidate.is_file():
                return FileResponse(candidate)
        # index.html names the hashed assets of the current build: never cache it.
        return FileResponse(index, headers={"Cache-Control": "no-cache"})
