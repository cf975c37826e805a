"""Command-line interface: a thin typer layer over the public Python API.

One module per command group (``fit``; ``predict`` and ``info`` on a model folder; ``prior``;
``evaluate``; ``programs`` and ``similarity``; ``run`` and ``report``),
each registered through :func:`pertspectra.cli._common.command`, which gives every command the
same ``-v/-q`` options and the same error path: a user mistake exits with status 1 and one
line ``error: ...``; only a bug prints a traceback (and says so).
"""

from __future__ import annotations

import typer

from . import _evaluate, _fit, _interpret, _model, _prior, _run, _similarity
from ._common import Quiet, Verbose, configure_logging

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="PertSpectra for Perturb-seq screens: fit, predict unseen combinations, inspect models.",
)
for _group in (_fit, _model, _prior, _evaluate, _interpret, _similarity, _run):
    app.registered_commands += _group.app.registered_commands


@app.callback()
def _main(verbose: Verbose = 0, quiet: Quiet = False) -> None:
    configure_logging(verbose, quiet)


def main() -> None:
    """Entry point of the ``pertspectra`` script."""
    app()


__all__ = ["app", "main"]
