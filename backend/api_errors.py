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

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from fastapi import FastAPI, Request, status
from fastapi.dependencies.models import Dependant
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel
from sqlalchemy import Engine, event
from sqlalchemy.exc import StatementError


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

    app.add_exception_handler(NulInText, nul_in_text)
    app.add_exception_handler(StatementError, nul_in_text)


_ERROR = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorDetail"}}}}

_BY_DEPENDENCY = {
    "get_current_user": {401: "Not signed in (no or an unknown API token or session)"},
    "require_admin": {403: "The caller is not an administrator"},
    "project_member": {404: "No such project, or the caller is not a member of it"},
    "project_lead": {403: "The caller is not a lead of this project"},
}


def _calls(dependant: Dependant) -> Iterable[str]:
    for sub in dependant.dependencies:
        name = getattr(sub.call, "__name__", "")
        if name:
            yield name
        yield from _calls(sub)


def _implied_errors(route: APIRoute) -> dict[int, str]:
    codes: dict[int, str] = {}
    for name in _calls(route.dependant):
        codes.update(_BY_DEPENDENCY.get(name, {}))
    if route.body_field is not None:
        codes[400] = "The body cannot be parsed (malformed JSON or multipart data)"
    return codes


def document_errors(app: FastAPI) -> None:
    """Makes ``app.openapi()`` list each route's implied error codes and the real 422 shape."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        for route in app.routes:
            if isinstance(route, APIRoute):
                for code, description in _implied_errors(route).items():
                    route.responses.setdefault(code, {"description": description, **_ERROR})
        schema = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
        )
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
