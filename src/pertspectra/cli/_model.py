"""Commands on a model folder: ``pertspectra predict`` and ``pertspectra info``.

Both take a plain model folder or one fitted under several conditions (``fit --condition-key``);
for the latter ``predict`` writes one row per (condition, label), a leading ``condition`` column,
and ``info`` lists the conditions (see :mod:`pertspectra.cli._conditions`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from . import _conditions
from . import _options as o
from ._common import command

app = typer.Typer()


@command(app, "predict")
def predict(
    model_dir: Annotated[Path, typer.Argument(help="Model folder from `pertspectra fit`.")],
    labels: Annotated[list[str], typer.Argument(help="Labels to predict, e.g. 'A+B' 'C'.")],
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            "-o",
            help="CSV (or .parquet) to write: rows labels, columns genes (a model fitted with "
            "--condition-key: rows (condition, label), a leading condition column).",
        ),
    ],
    condition: o.Condition = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing output file.")] = False,
) -> None:
    """Predict mean expression for labels made of seen perturbations (combinations included)."""
    import pertspectra as ps

    model = _conditions.load(model_dir)
    if isinstance(model, ps.model.FittedModel):
        if condition:
            msg = (
                f"--condition applies to a model fitted with --condition-key; {model_dir} was "
                "fitted without conditions"
            )
            raise ValueError(msg)
        pred = ps.predict.predict(model, labels)
        what = "label(s)"
    else:
        pred = _conditions.predict(model, model_dir, labels, condition)
        what = (
            f"(condition, label) row(s) in {pred.index.get_level_values(0).nunique()} condition(s)"
        )
    ps.io.write_table(pred, out, overwrite=overwrite, inputs=(model_dir / "model.json",))
    typer.echo(f"wrote {pred.shape[0]} {what} x {pred.shape[1]} genes to {out}")


@command(app, "info")
def info(model_dir: Annotated[Path, typer.Argument(help="Model folder.")]) -> None:
    """Describe a saved model (a condition model: each condition, its labels, cells and blocks)."""
    import pertspectra as ps

    model = _conditions.load(model_dir)
    if not isinstance(model, ps.model.FittedModel):
        typer.echo("\n".join(_conditions.info_lines(model)))
        return
    typer.echo(model.summary())
    typer.echo(
        "labels: " + ", ".join(model.labels[:20]) + (" ..." if len(model.labels) > 20 else "")
    )
