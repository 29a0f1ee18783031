"""``tessera oracle``: answer a labeling round's queries from the images' ground truth."""

from __future__ import annotations

import click
from sqlalchemy import select

from core.commands import command_session, find_project
from core.models import Round, RoundStatus
from core.settings import get_settings
from worker.engine.oracle import ORACLE_MODES
from worker.tasks.oracle import answer_round


@click.command()
@click.option("--project", required=True, help="Project id or exact name.")
@click.option("--round", "round_number", type=int, default=None, help="[default: the labeling one]")
@click.option("--mode", type=click.Choice(ORACLE_MODES), default="exact", show_default=True)
def oracle(project: str, round_number: int | None, mode: str) -> None:
    """Answer a labeling round's open queries from ground truth, as saves by the oracle
    account (history rows like a person's); images without ground truth stay open."""
    settings = get_settings()
    with command_session(settings) as session:
        found = find_project(session, project)
        query = select(Round).where(Round.project_id == found.id)
        if round_number is None:
            query = query.where(Round.status == RoundStatus.labeling)
        else:
            query = query.where(Round.number == round_number)
        round_ = session.scalar(query.order_by(Round.number.desc()).limit(1))
        if round_ is None:
            raise click.ClickException("No such round collecting labels in this project.")
        try:
            outcome = answer_round(session, round_.id, settings, mode)
        except ValueError as error:
            raise click.ClickException(str(error)) from error
        click.echo(f"round {round_.number}: {outcome.message()}")
