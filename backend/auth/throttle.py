"""Login throttling that parallel requests cannot slip past and that locks out only attackers.

Every attempt is counted *before* its password is checked, by one atomic upsert per key
(``INSERT ... ON CONFLICT DO UPDATE ... WHERE not locked ... RETURNING``, the same statement on
SQLite and PostgreSQL): a hundred guesses sent at once get exactly ``max`` through, the rest
are refused without an argon2 check. Three keys, checked in this order:

1. the client (its IP address): ``login_client_max_failures`` per window, whatever the
   accounts; a locked client stops here and counts against no account;
2. the account from that client: ``login_max_failures`` in a row; the lock applies to that
   client only, so an attacker cannot lock the owner out of their own account;
3. the account from everywhere: ``login_account_max_failures`` per window, a short lock that
   slows a distributed attack (it never grows, so nobody can hold an account shut for long).

Locks of keys 1 and 2 double with each repeat up to ``login_max_lockout_seconds``. A good
password clears keys 2 and 3 and gives back its attempt on key 1. Keys are HMACs under the
server secret, so the table stores no address or e-mail, and an unknown e-mail is counted and
answered exactly like a real one.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, case, delete, literal, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from core.models import LoginThrottle
from core.models.base import UTCDateTime, utc_now
from core.settings import Settings

log = logging.getLogger(__name__)

# A row untouched this long is forgotten (with its lock history).
FORGET_AFTER = timedelta(days=1)
# Lock lengths double up to the cap; more doublings than this never matter.
_MAX_DOUBLINGS = 16


class LoginLocked(Exception):
    def __init__(self, retry_after_seconds: int) -> None:
        super().__init__(f"too many failed logins; retry in {retry_after_seconds} s")
        self.retry_after_seconds = retry_after_seconds


@dataclass(frozen=True)
class ThrottleRule:
    """How many attempts a key gets per ``window``, and how long its locks last."""

    max_attempts: int
    window: timedelta
    lockout: timedelta
    max_lockout: timedelta
    growing: bool

    def lock_length(self, lockouts: int) -> timedelta:
        if not self.growing:
            return self.lockout
        return min(self.lockout * (1 << min(lockouts, _MAX_DOUBLINGS)), self.max_lockout)


@dataclass(frozen=True)
class ThrottleKeys:
    client: str
    account_from_client: str
    account: str


def _digest(secret_key: str, kind: str, value: str) -> str:
    return hmac.new(secret_key.encode(), f"{kind}\0{value}".encode(), hashlib.sha256).hexdigest()


def throttle_keys(secret_key: str, email: str, client: str) -> ThrottleKeys:
    """The three keys of a login attempt; ``email`` normalized, ``client`` an IP address."""
    return ThrottleKeys(
        client=_digest(secret_key, "client", client),
        account_from_client=_digest(secret_key, "account-client", f"{email}\0{client}"),
        account=_digest(secret_key, "account", email),
    )


def rules(settings: Settings) -> tuple[ThrottleRule, ThrottleRule, ThrottleRule]:
    """The rules of the client, account-from-client and account keys."""
    window = timedelta(seconds=settings.login_window_seconds)
    lockout = timedelta(seconds=settings.login_lockout_seconds)
    longest = timedelta(seconds=max(settings.login_max_lockout_seconds, lockout.total_seconds()))
    return (
        ThrottleRule(settings.login_client_max_failures, window, lockout, longest, growing=True),
        # "In a row": a good password resets it; the window only forgets a slow trickle.
        ThrottleRule(settings.login_max_failures, window, lockout, longest, growing=True),
        ThrottleRule(settings.login_account_max_failures, window, lockout, longest, growing=False),
    )


def _upsert(dialect: str):  # type: ignore[no-untyped-def]
    # Both dialects' insert() have on_conflict_do_update with the same arguments.
    return postgresql.insert if dialect == "postgresql" else sqlite.insert


def _count_attempt(session: Session, key: str, rule: ThrottleRule, now: datetime) -> bool:
    """Counts one attempt under ``key`` in one statement; False when the key is locked."""
    table = LoginThrottle.__table__
    row = table.c  # in ON CONFLICT DO UPDATE: the stored row
    fresh = row.window_started_at > literal(now - rule.window, UTCDateTime())
    attempts = case((fresh, row.attempts + 1), else_=1)
    reaches_limit = attempts >= rule.max_attempts
    lock_ends = case(
        *(
            (row.lockouts == n, literal(now + rule.lock_length(n), UTCDateTime()))
            for n in range(_MAX_DOUBLINGS)
        ),
        else_=literal(now + rule.lock_length(_MAX_DOUBLINGS), UTCDateTime()),
    )
    first_locks = rule.max_attempts <= 1
    statement = (
        _upsert(session.get_bind().dialect.name)(table)
        .values(
            key=key,
            attempts=0 if first_locks else 1,
            window_started_at=now,
            locked_until=now + rule.lock_length(0) if first_locks else None,
            lockouts=1 if first_locks else 0,
            updated_at=now,
        )
        .on_conflict_do_update(
            index_elements=[row.key],
            set_={
                # Reaching the limit locks the key and starts a new count for after the lock;
                # the attempt that reached it is still checked.
                "attempts": case((reaches_limit, 0), else_=attempts),
                "window_started_at": case(
                    (or_(reaches_limit, ~fresh), literal(now, UTCDateTime())),
                    else_=row.window_started_at,
                ),
                "locked_until": case((reaches_limit, lock_ends), else_=None),
                "lockouts": case((reaches_limit, row.lockouts + 1), else_=row.lockouts),
                "updated_at": now,
            },
            where=_unlocked(now),
        )
        .returning(row.key)
    )
    return session.execute(statement).first() is not None


def _unlocked(now: datetime) -> ColumnElement[bool]:
    return or_(
        LoginThrottle.locked_until.is_(None),
        LoginThrottle.locked_until <= literal(now, UTCDateTime()),
    )


def _retry_after(session: Session, key: str, now: datetime) -> int:
    locked_until = session.scalar(
        select(LoginThrottle.locked_until).where(LoginThrottle.key == key)
    )
    if locked_until is None:
        return 1
    return max(1, math.ceil((locked_until - now).total_seconds()))


def count_login_attempt(session: Session, keys: ThrottleKeys, settings: Settings) -> None:
    """Counts an attempt under each key before its password is checked; raises LoginLocked
    (nothing further counted) at the first locked key. The caller commits either way, before
    the slow password check, so the count is visible to parallel attempts at once."""
    now = utc_now()
    session.execute(
        delete(LoginThrottle).where(
            LoginThrottle.updated_at < literal(now - FORGET_AFTER, UTCDateTime()),
            _unlocked(now),
        )
    )
    for key, rule in zip(
        (keys.client, keys.account_from_client, keys.account), rules(settings), strict=True
    ):
        if not _count_attempt(session, key, rule, now):
            retry_after = _retry_after(session, key, now)
            # The key is an HMAC: the log names neither the e-mail nor the address.
            log.warning(
                "login locked: key %s… for %d s",
                key[:12],
                retry_after,
                extra={"lockout_key": key[:12], "retry_after_s": retry_after},
            )
            raise LoginLocked(retry_after)


def forget_login_failures(session: Session, keys: ThrottleKeys) -> None:
    """After a good password: the account's counts restart (and their locks lift), and the
    client gets its attempt back."""
    session.execute(
        delete(LoginThrottle).where(LoginThrottle.key.in_([keys.account_from_client, keys.account]))
    )
    session.execute(
        update(LoginThrottle)
        .where(and_(LoginThrottle.key == keys.client, LoginThrottle.attempts > 0))
        .values(attempts=LoginThrottle.attempts - 1)
    )
