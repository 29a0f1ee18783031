"""Passwords, browser sessions and API tokens.

Passwords are hashed with argon2 (pwdlib). Session and API tokens are 256-bit random secrets;
only their HMAC-SHA256 under ``TESSERA_SECRET_KEY`` is stored: enough for secrets that cannot
be guessed, and a lookup stays one indexed equality query. Changing the key signs everyone out.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta
from functools import lru_cache

from sqlalchemy import bindparam, delete, select
from sqlalchemy.orm import Session

from core.models import ApiToken, TokenKind, User
from core.models.base import utc_now
from core.passwords import hash_password, password_hasher

TOKEN_PREFIX = "tsr_"
LAST_USED_RESOLUTION = timedelta(minutes=10)
# A dummy hash verified when the e-mail is unknown, so timing does not reveal which accounts exist.
_DUMMY_PASSWORD = "not-a-real-password"


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return password_hasher().hash(_DUMMY_PASSWORD)


def normalize_email(email: str) -> str:
    return email.strip().lower()


def check_password(session: Session, email: str, password: str) -> User | None:
    """The active user with this e-mail and password, or None.

    An unknown e-mail costs the same argon2 check as a known one (a dummy hash), so neither
    the answer nor its time tells which accounts exist. Throttling is ``backend.auth.throttle``.
    """
    user = session.scalar(select(User).where(User.email == normalize_email(email)))
    if user is None:
        password_hasher().verify(password, _dummy_hash())
        return None
    if not password_hasher().verify(password, user.password_hash):
        return None
    return user if user.is_active else None


def create_user(
    session: Session,
    email: str,
    password: str,
    *,
    name: str = "",
    is_admin: bool = False,
    password_hash: str | None = None,
) -> User:
    """Adds a user (flushes, does not commit). ``password_hash`` skips hashing (tests, imports)."""
    user = User(
        email=normalize_email(email),
        name=name,
        password_hash=password_hash or hash_password(password),
        is_admin=is_admin,
        is_active=True,
    )
    session.add(user)
    session.flush()
    return user


def _token_digest(secret: str, key: str) -> str:
    # Keyed with the server secret: a leaked table cannot even be checked against guesses.
    return hmac.new(key.encode(), secret.encode(), hashlib.sha256).hexdigest()


def issue_token(
    session: Session,
    user: User,
    kind: TokenKind,
    *,
    key: str,
    name: str = "",
    lifetime: timedelta | None = None,
) -> tuple[ApiToken, str]:
    """A new token row and its secret; the secret exists only in the return value."""
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        user_id=user.id,
        kind=kind,
        name=name,
        token_hash=_token_digest(secret, key),
        prefix=secret[: len(TOKEN_PREFIX) + 6],
        expires_at=utc_now() + lifetime if lifetime is not None else None,
    )
    session.add(token)
    session.flush()
    return token, secret


def find_token(
    session: Session, secret: str, kind: TokenKind, *, key: str, now: datetime | None = None
) -> tuple[ApiToken, User] | None:
    """The unexpired token of ``kind`` with this secret and its active owner, or None."""
    now = now or utc_now()
    row = session.execute(
        _TOKEN_AND_OWNER, {"token_hash": _token_digest(secret, key), "kind": kind}
    ).one_or_none()
    if row is None:
        return None
    token, user = row
    return (token, user) if usable(token, user, now) else None


def usable(token: ApiToken, user: User, now: datetime) -> bool:
    """Whether a credential found by its secret signs its owner in: unexpired, owner active."""
    return (token.expires_at is None or token.expires_at > now) and user.is_active


def token_digest(secret: str, key: str) -> str:
    """What is stored of a secret, and looked up (``_token_digest``)."""
    return _token_digest(secret, key)


# Every authenticated request runs this: one statement, built once (building and keying a
# statement costs more CPU than running it).
_TOKEN_AND_OWNER = (
    select(ApiToken, User)
    .join(User, User.id == ApiToken.user_id)
    .where(
        ApiToken.token_hash == bindparam("token_hash"),
        ApiToken.kind == bindparam("kind", type_=ApiToken.kind.type),
    )
)


def forget_expired_sessions(session: Session, user: User) -> None:
    """Drops the user's expired browser sessions (tidied at each login, no cron needed)."""
    session.execute(
        delete(ApiToken).where(
            ApiToken.user_id == user.id,
            ApiToken.kind == TokenKind.session,
            ApiToken.expires_at <= utc_now(),
        )
    )


def needs_last_used_update(token: ApiToken, now: datetime) -> bool:
    # Recording every request would turn each read into a write; a coarse stamp is enough.
    return token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION


def revoke_token_secret(session: Session, secret: str, *, key: str) -> None:
    token = session.scalar(
        select(ApiToken).where(ApiToken.token_hash == _token_digest(secret, key))
    )
    if token is not None:
        session.delete(token)
