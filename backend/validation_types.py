"""Bounds for what the API accepts, in one place, so malformed input is a 422, never a 500.

- Ids (path parameters, query lists, body fields) fit a PostgreSQL ``integer`` column
  (1 .. 2^31-1): a bigger number used to reach the database and fail there (SQLite: above
  2^63, PostgreSQL: above 2^31).
- Counts that are stored as ``BIGINT`` stay below 2^63.
- ``If-Match`` mask versions are parsed with a digit limit (an ETag of 2^64 used to reach
  the database).
- JSON read from uploaded files is parsed with limits on nesting depth and on the length
  of a number literal (deep nesting overflowed Python's stack, a 5,000-digit integer
  exceeded its int-conversion limit; both were 500s), and without NaN or Infinity, which
  neither PostgreSQL's JSON nor strict JSON readers accept.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any

from fastapi import Path, Query
from pydantic import Field

MAX_ID = 2**31 - 1
MAX_BIGINT = 2**63 - 1

Id = Annotated[int, Path(ge=1, le=MAX_ID, description="An id (1 .. 2^31-1).")]
"""A path parameter naming a row."""

IdQuery = Annotated[int, Query(ge=1, le=MAX_ID)]
"""A query parameter naming a row."""

# Mask versions count saves; nine digits are a billion saves of one image.
_ETAG = re.compile(r'^\s*(?:W/)?"?(\d{1,9})"?\s*$')


def parse_version_etag(value: str) -> int | None:
    """The version in an ETag such as ``"3"``, ``W/"3"`` or ``3``; None if it is not one."""
    match = _ETAG.match(value)
    return int(match.group(1)) if match else None


MAX_JSON_DEPTH = 32
MAX_JSON_NUMBER_CHARS = 64


class JsonRefused(ValueError):
    """JSON text that is malformed or exceeds a limit; the message names the fault."""


def _refuse_constant(name: str) -> Any:
    raise JsonRefused(f"{name} is not a JSON number")


def _bounded_int(literal: str) -> int:
    if len(literal) > MAX_JSON_NUMBER_CHARS:
        raise JsonRefused(
            f"a number of {len(literal)} characters (at most {MAX_JSON_NUMBER_CHARS})"
        )
    return int(literal)


def _bounded_float(literal: str) -> float:
    if len(literal) > MAX_JSON_NUMBER_CHARS:
        raise JsonRefused(
            f"a number of {len(literal)} characters (at most {MAX_JSON_NUMBER_CHARS})"
        )
    value = float(literal)
    if value in (float("inf"), float("-inf")):
        raise JsonRefused(f"{literal} is too large for a double")
    return value


def _nesting_depth(text: str, limit: int) -> int:
    """The deepest bracket nesting outside strings; stops counting once past ``limit``."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > limit:
                    return deepest
        elif char in "]}":
            depth -= 1
    return deepest


def load_json_limited(text: str, *, max_depth: int = MAX_JSON_DEPTH, what: str = "JSON") -> Any:
    """``json.loads`` with limits; raises JsonRefused naming the fault (never RecursionError,
    nor ValueError from int conversion)."""
    if _nesting_depth(text, max_depth) > max_depth:
        raise JsonRefused(f"{what} nests deeper than {max_depth} levels")
    try:
        return json.loads(
            text,
            parse_int=_bounded_int,
            parse_float=_bounded_float,
            parse_constant=_refuse_constant,
        )
    except json.JSONDecodeError as error:
        raise JsonRefused(f"not JSON ({error.msg})") from error


IdValue = Annotated[int, Field(ge=1, le=MAX_ID)]
"""An id inside a list or a body."""
