"""Serving the built browser UI (``frontend/dist``) next to the API.

Files under ``/assets`` are content-hashed by Vite and served as static files. Any other
GET that matches no route and is not an API or docs path gets ``index.html``, so the front
end's router handles deep links and reloads. That fallback is a 404 handler rather than a
catch-all route: the API keeps its own 404s and 405s, and ``app.routes`` lists only the API.
Without a build, those paths answer a short page saying how to make one.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import FileResponse, HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from core.settings import Settings

# The repository's frontend/dist when running from a checkout (or an editable install).
DEFAULT_DIST_DIR = Path(__file__).resolve().parent.parent / "frontend" / "dist"

# Paths the fallback never answers: they belong to the API, its docs and the built assets.
_RESERVED_PREFIXES = ("/api/", "/docs", "/assets/")

NOT_BUILT_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Tessera: front end not built</title></head>
<body style="font-family: system-ui, sans-serif; max-width: 40em; margin: 4em auto">
<h1>The Tessera front end is not built</h1>
<p>The API is running (<a href="/docs">/docs</a>), but <code>{dist}</code> does not exist.</p>
<p>Build it once (Node.js 20 or newer), then reload this page:</p>
<pre>bash scripts/frontend.sh    # npm ci &amp;&amp; npm run build in frontend/</pre>
<p>or point <code>TESSERA_FRONTEND_DIST_DIR</code> at a built copy.</p>
</body></html>
"""


def resolve_dist_dir(settings: Settings) -> Path:
    return settings.frontend_dist_dir or DEFAULT_DIST_DIR


def frontend_response(dist: Path, path: str) -> Response:
    """The answer for a browser path: a top-level build file, index.html, or the help page."""
    index = dist / "index.html"
    if not index.is_file():
        return HTMLResponse(NOT_BUILT_PAGE.format(dist=dist), status_code=503)
    name = path.lstrip("/")
    # A top-level file of the build (favicon, robots.txt), never anything outside dist.
    if name and "/" not in name and not name.startswith("."):
        candidate = dist / name
        if candidate.is_file():
            return FileResponse(candidate)
    # index.html names the hashed assets of the current build: browsers must revalidate it.
    return FileResponse(index, headers={"Cache-Control": "no-cache"})


def mount_frontend(app: FastAPI, settings: Settings) -> None:
    """Adds the static assets and the browser-path fallback; call after the API routers."""
    dist = resolve_dist_dir(settings)
    app.mount(
        "/assets",
        StaticFiles(directory=dist / "assets", check_dir=False),
        name="frontend-assets",
    )

    async def not_found(request: Request, error: Exception) -> Response:
        assert isinstance(error, StarletteHTTPException)
        path = request.url.path
        if (
            error.status_code == 404
            and request.method in ("GET", "HEAD")
            and not path.startswith(_RESERVED_PREFIXES)
        ):
            return frontend_response(dist, path)
        return await http_exception_handler(request, error)

    app.add_exception_handler(404, not_found)
