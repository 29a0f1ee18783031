"""What a new password must be: long enough, not blank, and not easy to guess.

"Easy to guess" is zxcvbn's estimate (score 0-4): its 30,000 most common passwords, English
words, names, keyboard runs, dates and repeats, and the account's own e-mail and name. Score 2
means "somewhat guessable: protection from throttled online attacks", which is what the login
throttle gives (NIST SP 800-63B 5.1.1.2: block common, expected or compromised values).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from zxcvbn import zxcvbn

MIN_LENGTH: Final = 10
MAX_LENGTH: Final = 1024
MIN_SCORE: Final = 2
# zxcvbn's matching is quadratic in length; a prefix this long already scores 4 when random.
_SCORED_PREFIX: Final = 72


def password_problem(password: str, user_inputs: Sequence[str] = ()) -> str | None:
    """Why ``password`` is refused, in a sentence for the user; None when it is acceptable."""
    if not password.strip():
        return "The password is blank; choose one of at least 10 characters."
    if len(password) < MIN_LENGTH:
        return f"The password has {len(password)} characters; use at least {MIN_LENGTH}."
    if len(password) > MAX_LENGTH:
        return f"The password is longer than {MAX_LENGTH} characters."
    inputs = [value for value in user_inputs if value]
    # The e-mail's local part is a guess an attacker tries first, too.
    inputs += [value.partition("@")[0] for value in inputs if "@" in value]
    verdict = zxcvbn(password[:_SCORED_PREFIX], user_inputs=inputs)
    if verdict["score"] >= MIN_SCORE:
        return None
    warning = str(verdict["feedback"].get("warning") or "").strip()
    hint = " ".join(str(s) for s in verdict["feedback"].get("suggestions") or [])
    reason = warning or "It is easy to guess."
    return f"The password is too easy to guess: {reason} {hint}".strip()
