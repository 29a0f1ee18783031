"""The demo's two logins: a lead who starts rounds and an annotator who paints.

Made with the same service function as ``tessera user add``: the API has no sign-up, and the
first account cannot be made through it.
"""

from __future__ import annotations

from sqlalchemy import select

from backend.auth.service import create_user, normalize_email
from core.db import make_engine, make_session_factory
from core.models import User
from core.passwords import hash_password, password_hasher
from core.settings import Settings
from demo.environment import DemoState

LEAD_EMAIL = "lead@tessera.demo"
ANNOTATOR_EMAIL = "annotator@tessera.demo"


def ensure_demo_users(settings: Settings, state: DemoState) -> None:
    """The lead and the annotator exist, active, with the stored passwords."""
    engine = make_engine(settings.resolved_database_url)
    try:
        with make_session_factory(engine)() as session:
            for email, password, name in (
                (LEAD_EMAIL, state.lead_password, "Demo lead"),
                (ANNOTATOR_EMAIL, state.annotator_password, "Demo annotator"),
            ):
                user = session.scalar(select(User).where(User.email == normalize_email(email)))
                if user is None:
                    create_user(session, email, password, name=name)
                elif not password_hasher().verify(password, user.password_hash):
                    # demo.json was replaced (or the data directory copied): its passwords win.
                    user.password_hash = hash_password(password)
                    user.is_active = True
            session.commit()
    finally:
        engine.dispose()
