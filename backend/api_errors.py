"""How the API answers bad input, wired by ``create_app``: a 422 for NUL characters in text,
and error responses documented in the OpenAPI schema as they are really sent.

NUL characters: PostgreSQL refuses them in text (a 500 from any string that reached it: an
e-mail at login, a project name, a file name), SQLite stores them. One guard in front of
every statement refuses text parameters holding U+0000 on both databases alike, before
anything is written; the request answers 422 and its transaction rolls back. A guard at
the statement beats a validator per schema: it also covers query strings, form fields and
upload file names, including ones added later.

Documented responses: every route gets the error codes its dependencies can raise (401
without a signed-in caller, 403 for a role it lacks, 404 for a project it is not a member
of, 400 for a body that cannot be parsed), with the ``{"detail": ...}`` shape all of them
use; routes declare their own further codes with ``responses=``. FastAPI documents 422 as
a list of validation errors only, while services answer 422 with a sentence, so the schema
says "either".
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from fastapi import FastAPI, Request, status
from fastapi.dependencies.models import Dependant
from fastapi.encoders import jsonable_encoder
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from fastapi.routing import RouteContext, iter_route_contexts
from pydantic import BaseModel
from sqlalchemy import Engine, event
from sqlalchemy.exc import StatementError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import compile_path

from core.errors import DomainError

log = logging.getLogger("tessera.api")


class NulInText(ValueError):
    """A text parameter holds U+0000."""


def _texts(parameters: Any) -> Iterator[str]:
    if isinstance(parameters, str):
        yield parameters
    elif isinstance(parameters, Mapping):
        for value in parameters.values():
            yield from _texts(value)
    elif isinstance(parameters, list | tuple):
        for value in parameters:
            yield from _texts(value)


def _refuse_nul_text(
    _connection: Any,
    _cursor: Any,
    statement: str,
    parameters: Any,
    _context: Any,
    _executemany: bool,
) -> None:
    if any("\x00" in text for text in _texts(parameters)):
        raise NulInText("text holds a NUL character (U+0000), which Tessera does not store")


def refuse_nul_text(engine: Engine) -> None:
    """Every statement on ``engine`` whose text parameters hold U+0000 raises NulInText."""
    event.listen(engine, "before_cursor_execute", _refuse_nul_text)


def _nul_cause(error: BaseException) -> NulInText | None:
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, NulInText):
            return seen
        seen = seen.orig if isinstance(seen, StatementError) else seen.__cause__
    return None


class ErrorDetail(BaseModel):
    """The body of every error answer."""

    detail: Any


def install_bad_input_handlers(app: FastAPI) -> None:
    async def nul_in_text(request: Request, error: Exception) -> JSONResponse:
        cause = _nul_cause(error)
        if cause is None:
            raise error
        return JSONResponse(
            {"detail": f"{cause} (found in the request's {request.method} {request.url.path})."},
            status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
        )

    async def method_not_allowed(request: Request, error: Exception) -> Response:
        assert isinstance(error, StarletteHTTPException)
        if error.status_code != status.HTTP_405_METHOD_NOT_ALLOWED:
            return await http_exception_handler(request, error)
        # Starlette's Allow names only the first route of the path; FastAPI has one per method.
        allowed = sorted(
            {
                method
                for pattern, methods in _route_patterns(request.app)
                if pattern.match(request.url.path)
                for method in methods
            }
        )
        return JSONResponse(
            {"detail": error.detail},
            status_code=error.status_code,
            headers={"Allow": ", ".join(allowed)},
        )

    async def invalid_request(request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, RequestValidationError)
        # The errors echo the input; JSON has no Infinity or NaN (Python's parser reads them).
        return JSONResponse(
            {"detail": _json_safe(jsonable_encoder(error.errors()))},
            status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
        )

    async def domain_error(request: Request, error: Exception) -> JSONResponse:
        # The one place services' domain errors become HTTP answers.
        assert isinstance(error, DomainError)
        log.info(
            "refused %s %s: %d %s",
            request.method,
            request.url.path,
            error.status_code,
            error.message,
            extra={"status": error.status_code, "error": type(error).__name__},
        )
        return JSONResponse({"detail": error.message}, status_code=error.status_code)

    app.add_exception_handler(DomainError, domain_error)
    app.add_exception_handler(RequestValidationError, invalid_request)
    app.add_exception_handler(NulInText, nul_in_text)
    app.add_exception_handler(StatementError, nul_in_text)
    app.add_exception_handler(StarletteHTTPException, method_not_allowed)


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {key: _json_safe(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_json_safe(item) for item in value]
    return value


def _route_patterns(app: FastAPI) -> list[tuple[re.Pattern[str], set[str]]]:
    patterns: list[tuple[re.Pattern[str], set[str]]] | None = getattr(
        app.state, "route_patterns", None
    )
    if patterns is None:
        patterns = [
            (compile_path(route.path)[0], set(route.methods or ()))
            for route in iter_route_contexts(app.routes)
            if route.path is not None
        ]
        app.state.route_patterns = patterns
    return patterns


_ERROR = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorDetail"}}}}

_NOT_SIGNED_IN = {401: "Not signed in (no or an unknown API token or session)"}
_BY_DEPENDENCY = {
    "get_current_user": _NOT_SIGNED_IN,
    "require_admin": {403: "The caller is not an administrator"},
    # It checks the credential itself (one statement with the membership).
    "project_member": {
        **_NOT_SIGNED_IN,
        404: "No such project, or the caller is not a member of it",
    },
    "project_lead": {403: "The caller is not a lead of this project"},
}


_CONFLICT = "Conflicts with the current state (the message says which)"
_UPLOAD = {
    413: "A file, the request or a decoded image exceeds a limit (TESSERA_MAX_*)",
    415: "Not a file type Tessera reads",
}

# Codes a route's own body raises, beyond its dependencies' (paths below /api/v1).
_BY_ROUTE: dict[tuple[str, str], dict[int, str]] = {
    ("PATCH", "/users/me"): {403: "The current password is wrong"},
    ("POST", "/users"): {409: "A user with this e-mail exists"},
    ("PATCH", "/users/{user_id}"): {409: "Administrators cannot demote or deactivate themselves"},
    ("POST", "/projects"): {409: "Two classes share a name or an index"},
    ("POST", "/projects/{project_id}/classes"): {409: _CONFLICT},
    ("PATCH", "/projects/{project_id}/classes/{class_id}"): {409: _CONFLICT},
    ("DELETE", "/projects/{project_id}/classes/{class_id}"): {409: _CONFLICT},
    ("POST", "/projects/{project_id}/members"): {409: _CONFLICT},
    ("PATCH", "/projects/{project_id}/members/{user_id}"): {409: _CONFLICT},
    ("DELETE", "/projects/{project_id}/members/{user_id}"): {409: _CONFLICT},
    ("POST", "/projects/{project_id}/images"): {409: _CONFLICT, **_UPLOAD},
    ("PUT", "/projects/{project_id}/images/{image_id}/ground-truth"): _UPLOAD,
    ("PUT", "/projects/{project_id}/images/{image_id}/mask"): {
        403: "The task is leased to someone else",
        **_UPLOAD,
    },
    ("PATCH", "/projects/{project_id}/images/{image_id}/mask"): {
        403: "The task is leased to someone else"
    },
    ("POST", "/projects/{project_id}/tasks/{query_id}/release"): {
        403: "The task is leased to someone else"
    },
    ("POST", "/projects/{project_id}/rounds"): {409: _CONFLICT, 503: "The broker is unreachable"},
    ("POST", "/projects/{project_id}/rounds/{round_id}/close"): {409: _CONFLICT},
    ("POST", "/projects/{project_id}/rounds/{round_id}/oracle"): {
        409: _CONFLICT,
        503: "The broker is unreachable",
    },
    ("POST", "/projects/{project_id}/jobs/{job_id}/retry"): {
        409: _CONFLICT,
        503: "The broker is unreachable",
    },
}


def _calls(dependant: Dependant) -> Iterable[str]:
    for sub in dependant.dependencies:
        name = getattr(sub.call, "__name__", "")
        if name:
            yield name
        yield from _calls(sub)


def _implied_errors(route: RouteContext, api_prefix: str) -> dict[int, str]:
    codes: dict[int, str] = {}
    for name in _calls(route.dependant):
        codes.update(_BY_DEPENDENCY.get(name, {}))
    if route.body_field is not None:
        codes[400] = "The body cannot be parsed (malformed JSON or multipart data)"
    if any(param.name != "project_id" for param in route.dependant.path_params):
        codes[404] = "No such resource here (the message names it)"
    path = (route.path_format or "").removeprefix(api_prefix)
    for method in route.methods or ():
        codes.update(_BY_ROUTE.get((method, path), {}))
    return codes


def document_errors(app: FastAPI, api_prefix: str) -> None:
    """Makes ``app.openapi()`` list each route's implied error codes and the real 422 shape."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
        )
        paths = schema.get("paths", {})
        for route in iter_route_contexts(app.routes):
            operations = paths.get(route.path_format or "", {})
            for method in route.methods or ():
                operation = operations.get(method.lower())
                if operation is None:
                    continue
                responses = operation.setdefault("responses", {})
                for code, description in _implied_errors(route, api_prefix).items():
                    responses.setdefault(str(code), {"description": description, **_ERROR})
                operation["responses"] = dict(sorted(responses.items()))
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components["ErrorDetail"] = ErrorDetail.model_json_schema()
        validation = components.get("HTTPValidationError")
        if validation is not None:
            validation["properties"]["detail"] = {
                "anyOf": [
                    {"type": "array", "items": {"$ref": "#/components/schemas/ValidationError"}},
                    {"type": "string"},
                ],
                "title": "Detail",
                "description": "Validation errors, or one sentence naming the problem.",
            }
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
