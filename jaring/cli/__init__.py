"""The ``jaring`` command line: one command per chore, each with its own help."""

from __future__ import annotations

import importlib
import importlib.util

import typer

from jaring.cli import core

app = typer.Typer(
    name="jaring",
    help="Jaring: harvest citizens' complaints from social media, classify, review and forward them to LAPOR!.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,  # locals can hold secrets and personal data
)

core.register(app)
# Command groups, one module each (models: training and the model registry; sources: harvesting;
# web: the review app and users; forward: the LAPOR! outbox).
for _group in ("models", "sources", "web", "forward"):
    _name = f"jaring.cli.{_group}"
    if importlib.util.find_spec(_name) is not None:
        importlib.import_module(_name).register(app)


def main() -> None:
    """Entry point of the ``jaring`` console script."""
    app()
