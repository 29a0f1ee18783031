"""``tessera user add``: create accounts from the command line (e.g. the first admin)."""

from __future__ import annotations

import click
from sqlalchemy import select

from backend.auth.password_policy import password_problem
from backend.auth.service import create_user, normalize_email
from core.commands import command_session
from core.models import User


@click.group()
def user() -> None:
    """Manage user accounts."""


@user.command("add")
@click.argument("email")
@click.option("--name", default="", help="Display name.")
@click.option("--admin", is_flag=True, help="Make the user an administrator.")
@click.option(
    "--password",
    prompt=True,
    hide_input=True,
    confirmation_prompt=True,
    envvar="TESSERA_NEW_USER_PASSWORD",
    help="Prompted for when omitted (or read from TESSERA_NEW_USER_PASSWORD).",
)
def add(email: str, name: str, admin: bool, password: str) -> None:
    """Create a user who logs in with EMAIL."""
    problem = password_problem(password, (email, name))
    if problem is not None:
        raise click.BadParameter(problem, param_hint="--password")
    with command_session() as session:
        if session.scalar(select(User.id).where(User.email == normalize_email(email))):
            raise click.ClickException(f"A user {email} already exists.")
        created = create_user(session, email, password, name=name, is_admin=admin)
        session.commit()
        role = "administrator" if admin else "user"
        click.echo(f"Created {role} {created.email} (id {created.id}).")
