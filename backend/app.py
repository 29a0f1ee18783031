"""The FastAPI application factory: everything is created here, nothing at import."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI
from starlette.types import ASGIApp

from backend.annotations.router import router as annotations_router
from backend.api_errors import document_errors, install_bad_input_handlers, refuse_nul_text
from backend.auth.router import router as auth_router
from backend.dashboard.router import router as dashboard_router
from backend.export.router import router as export_router
from backend.frontend import mount_frontend
from backend.http_guards import BodyLimit, CookieOrigin, SecurityHeaders
from backend.images.router import router as images_router
from backend.invitations.router import project_router as project_invitations_router
from backend.invitations.router import router as invitations_router
from backend.memory import bound_heap_retention
from backend.projects.router import router as projects_router
from backend.request_ids import RequestId
from backend.review.router import router as review_router
from backend.rounds.router import router as rounds_router
from backend.storage import install_storage_full_handlers
from backend.users.router import router as users_router
from core.db import make_engine, make_session_factory
from core.logs import configure_logging
from core.settings import Settings, get_settings

API_PREFIX = "/api/v1"

DESCRIPTION = """
Tessera labels segmentation masks by having people paint only the superpixels an
active-learning model is unsure about.

**Auth**: browsers log in at `POST /api/v1/auth/login` (HttpOnly session cookie); scripts
create a token at `POST /api/v1/auth/tokens` and send `Authorization: Bearer <token>`.
A project's resources answer 404 to non-members; leads manage settings, uploads and export.

**Masks** are greyscale PNGs: pixel = class index, 255 = unlabeled. Saves are versioned:
send the version you edited as `If-Match`.
"""


def build_api_router() -> APIRouter:
    api = APIRouter(prefix=API_PREFIX)
    for router in (
        auth_router,
        users_router,
        projects_router,
        images_router,
        annotations_router,
        rounds_router,
        dashboard_router,
        export_router,
        project_invitations_router,
        invitations_router,
        review_router,
    ):
        api.include_router(router)

    @api.get("/health", tags=["meta"])
    def health() -> dict[str, str]:
        """Liveness probe (no authentication)."""
        return {"status": "ok"}

    return api


class TesseraApp(FastAPI):
    """FastAPI with the security headers outside its error handler, so 500s get them too,
    and the request id outside everything, so every answer carries it and is logged."""

    def build_middleware_stack(self) -> ASGIApp:
        return RequestId(SecurityHeaders(super().build_middleware_stack()))


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(settings.log_level)
    engine = make_engine(settings.resolved_database_url)
    refuse_nul_text(engine)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        bound_heap_retention()
        yield
        engine.dispose()

    app = TesseraApp(
        title="Tessera",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.session_factory = make_session_factory(engine)

    # Starlette runs the last added outermost: headers on every answer, then the origin
    # check, then the body limit (which may answer 401/413 before the body is read).
    app.add_middleware(BodyLimit)
    app.add_middleware(CookieOrigin)

    app.include_router(build_api_router())
    install_bad_input_handlers(app)
    install_storage_full_handlers(app)
    document_errors(app, API_PREFIX)
    mount_frontend(app, settings)
    return app
