"""ASGI middleware that guards every request before a route sees it.

- ``BodyLimit``: a request body is counted while it is read, whatever Content-Length says
  (chunked bodies have none), and cut at the limit with 413; a request that carries a body
  but no valid credential is refused with 401 before any of it is read.
- ``CookieOrigin``: a state-changing request authenticated by the session cookie (a file
  upload among them) that names an origin (Origin, else Referer) must name this server's;
  bearer-token clients are unaffected.
- ``SecurityHeaders``: nosniff, a Content-Security-Policy per kind of response (the built UI,
  the API docs, API responses including user images: ``sandbox``), no framing, a referrer
  policy.

They are plain ASGI (no ``BaseHTTPMiddleware``), so they wrap ``receive`` and ``send`` without
buffering anything. Settings are read per request from ``app.state.settings``.
"""

from __future__ import annotations

import mimetypes
import re
from pathlib import PurePosixPath
from typing import Final
from urllib.parse import quote, urlsplit

import anyio.to_thread
from sqlalchemy.orm import Session, sessionmaker
from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from backend.auth.service import find_token
from core.models import TokenKind
from core.settings import Settings

API_PREFIX: Final = "/api/v1"
# The public routes that may carry a body from someone not signed in.
ANONYMOUS_BODY_PATHS: Final = frozenset({f"{API_PREFIX}/auth/login", f"{API_PREFIX}/auth/logout"})
# Accepting an invitation: the link's secret in the path is the credential (a password body).
ANONYMOUS_BODY_PATTERN: Final = re.compile(rf"^{API_PREFIX}/invitations/[^/]{{1,100}}/accept$")
# Bodies at most this long from a caller with some credential are read without first
# checking it (the route checks it anyway); larger ones are checked first.
CHECK_CREDENTIAL_ABOVE: Final = 64 * 1024
UNSAFE_METHODS: Final = frozenset({"POST", "PUT", "PATCH", "DELETE"})
NOT_SIGNED_IN: Final = "Not signed in: log in or send an API token as 'Authorization: Bearer ...'."

# The built UI: its own scripts and style sheets only; the UI code sets style attributes.
UI_POLICY: Final = (
    "default-src 'self'; script-src 'self'; style-src 'self'; style-src-attr 'unsafe-inline'; "
    "img-src 'self' data: blob:; connect-src 'self'; font-src 'self'; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
# FastAPI's Swagger page loads its bundle from jsDelivr and starts it with an inline script.
DOCS_POLICY: Final = (
    "default-src 'self'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    "img-src 'self' data: https://fastapi.tiangolo.com; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)
# API answers, uploaded images among them: nothing runs, even when opened as a page.
API_POLICY: Final = "default-src 'none'; frame-ancestors 'none'; sandbox"


def _settings(scope: Scope) -> Settings:
    settings: Settings = scope["app"].state.settings
    return settings


class BodyTooLarge(HTTPException):
    """Raised from ``receive``; FastAPI passes HTTPExceptions raised while reading a body on
    unchanged, so the route answers 413 (and BodyLimit makes sure of it)."""

    def __init__(self, limit: int, setting: str) -> None:
        super().__init__(413, f"The request body exceeds the limit of {limit} bytes ({setting}).")


def _has_body(headers: Headers) -> bool:
    length = headers.get("content-length")
    if length is not None:
        return length.strip() not in ("", "0")
    return "transfer-encoding" in headers


def _body_limit(headers: Headers, settings: Settings) -> tuple[int, str]:
    """Multipart uploads (spooled to disk by the parser) may be large; any other body (JSON,
    a mask PNG) is held in memory, so it gets the smaller limit."""
    if headers.get("content-type", "").lower().startswith("multipart/form-data"):
        return settings.max_request_bytes, "TESSERA_MAX_REQUEST_BYTES"
    return settings.max_body_bytes, "TESSERA_MAX_BODY_BYTES"


def _bearer_secret(headers: Headers) -> str | None:
    scheme, _, secret = headers.get("authorization", "").partition(" ")
    return secret.strip() or None if scheme.lower() == "bearer" else None


def _cookie(headers: Headers, name: str) -> str | None:
    for part in headers.get("cookie", "").split(";"):
        key, _, value = part.strip().partition("=")
        if key == name and value:
            return value
    return None


def _has_valid_credential(scope: Scope, headers: Headers) -> bool:
    """Whether the bearer token (or else the session cookie) names an active user."""
    settings = _settings(scope)
    factory: sessionmaker[Session] = scope["app"].state.session_factory
    bearer = _bearer_secret(headers)
    with factory() as session:
        if bearer is not None:
            return find_token(session, bearer, TokenKind.api, key=settings.secret_key) is not None
        cookie = _cookie(headers, settings.session_cookie_name)
        if cookie is None:
            return False
        return find_token(session, cookie, TokenKind.session, key=settings.secret_key) is not None


class BodyLimit:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        if not _has_body(headers):
            await self.app(scope, receive, send)
            return
        settings = _settings(scope)
        limit, setting = _body_limit(headers, settings)
        length = headers.get("content-length", "").strip()
        if length.isdigit() and int(length) > limit:
            await _json(send, 413, BodyTooLarge(limit, setting).detail)
            return
        path = scope["path"]
        if path not in ANONYMOUS_BODY_PATHS and not ANONYMOUS_BODY_PATTERN.match(path):
            has_credential = (
                _bearer_secret(headers) is not None
                or _cookie(headers, settings.session_cookie_name) is not None
            )
            if has_credential and (not length.isdigit() or int(length) > CHECK_CREDENTIAL_ABOVE):
                has_credential = await anyio.to_thread.run_sync(
                    _has_valid_credential, scope, headers
                )
            if not has_credential:
                await _json(send, 401, NOT_SIGNED_IN, {"WWW-Authenticate": "Bearer"})
                return

        received = 0
        exceeded = False

        async def counted_receive() -> Message:
            nonlocal received, exceeded
            if exceeded:
                raise BodyTooLarge(limit, setting)
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    exceeded = True
                    raise BodyTooLarge(limit, setting)
            return message

        started = False

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                if exceeded and message["status"] != 413:
                    # Whatever the route made of a cut body, the answer is 413.
                    await _json(send, 413, BodyTooLarge(limit, setting).detail)
                    raise _Replaced()
            await send(message)

        try:
            await self.app(scope, counted_receive, guarded_send)
        except _Replaced:
            return
        except BodyTooLarge as error:
            if started:
                raise
            await _json(send, 413, str(error.detail))


class _Replaced(Exception):
    """The app's response was replaced by the 413; its remaining messages are dropped."""


async def _json(
    send: Send, status_code: int, detail: str, headers: dict[str, str] | None = None
) -> None:
    response = JSONResponse({"detail": detail}, status_code=status_code, headers=headers)
    # Do not read or wait for the rest of the body: the connection is closed after this.
    response.headers["Connection"] = "close"
    await response({"type": "http"}, _no_receive, send)


async def _no_receive() -> Message:
    return {"type": "http.disconnect"}


def _claimed_origin(headers: Headers) -> str:
    return headers.get("origin") or headers.get("referer") or "an unnamed origin"


def own_origin_matches(headers: Headers) -> bool | None:
    """Whether Origin (else Referer) names this server's host; None when neither is sent."""
    claimed = headers.get("origin") or headers.get("referer")
    if claimed is None:
        return None
    host = headers.get("host", "").lower()
    return bool(host) and urlsplit(claimed).netloc.lower() == host


class CookieOrigin:
    """Refuses cross-site uses of the session cookie on state-changing requests.

    SameSite=Lax already keeps the cookie off cross-site POSTs in current browsers; this is
    the second line (older browsers, same-site sibling hosts). Browsers name the origin of
    every cross-origin POST (``null`` when the page hides it, which is refused too); a
    request naming none comes from a script, not a page, and passes (the e2e seeding and
    the demo log in and upload that way). Bearer-token clients are unaffected.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in UNSAFE_METHODS:
            headers = Headers(scope=scope)
            cookie_name = _settings(scope).session_cookie_name
            if (
                _bearer_secret(headers) is None
                and _cookie(headers, cookie_name) is not None
                and own_origin_matches(headers) is False
            ):
                await _json(
                    send,
                    403,
                    "Cross-site request refused: a request signed in by the session cookie "
                    f"must come from this server's pages, not {_claimed_origin(headers)}. "
                    "Scripts should send an API token instead.",
                )
                return
        await self.app(scope, receive, send)


def content_security_policy(path: str) -> str:
    if path.startswith(f"{API_PREFIX}/"):
        return API_POLICY
    if path.startswith("/docs"):
        return DOCS_POLICY
    return UI_POLICY


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        policy = content_security_policy(scope["path"])

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("X-Content-Type-Options", "nosniff")
                headers.setdefault("Content-Security-Policy", policy)
                headers.setdefault("X-Frame-Options", "DENY")
                headers.setdefault("Referrer-Policy", "same-origin")
                headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
            await send(message)

        await self.app(scope, receive, send_with_headers)


def content_disposition(disposition: str, filename: str, content_type: str) -> str:
    """``inline``/``attachment`` with the file's name, its extension replaced by the one of
    its true type (an upload named ``page.html`` is saved as ``page.png``)."""
    stem = PurePosixPath(filename.replace("\\", "/")).stem or "file"
    name = stem + (mimetypes.guess_extension(content_type) or "")
    fallback = re.sub(r"[^A-Za-z0-9._-]+", "_", name)[:150]
    return f"{disposition}; filename=\"{fallback}\"; filename*=UTF-8''{quote(name[:150])}"
