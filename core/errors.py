"""Domain errors: services raise these, and one handler in ``backend.api_errors`` (wired by
``create_app``) turns them into HTTP answers. This module imports no web framework, so
services stay free of HTTP and worker tasks that call them (the oracle calls ``save_mask``)
get domain errors, not HTTP ones.

Each error carries the sentence that names the problem; the API answers it as
``{"detail": message}`` with the error's status code.
"""

from __future__ import annotations

from http import HTTPStatus


class DomainError(Exception):
    """A request the domain refuses; ``status_code`` is the HTTP code the API answers."""

    status_code: int = HTTPStatus.BAD_REQUEST

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(DomainError):
    status_code = HTTPStatus.NOT_FOUND


class Conflict(DomainError):
    """Conflicts with the current state (a name in use, a round in the wrong status)."""

    status_code = HTTPStatus.CONFLICT


class PermissionDenied(DomainError):
    status_code = HTTPStatus.FORBIDDEN


class InvalidInput(DomainError):
    status_code = HTTPStatus.UNPROCESSABLE_ENTITY


class PreconditionFailed(DomainError):
    status_code = HTTPStatus.PRECONDITION_FAILED


class PayloadTooLarge(DomainError):
    status_code = HTTPStatus.REQUEST_ENTITY_TOO_LARGE
