"""Commands on a model folder: ``pertspectra predict`` and ``pertspectra info``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ._common import command

app = typer.Typer()


@command(app, "predict")
def predict(
    model_dir: Annotated[Path, typer.Argument(help="Model folder from `pertspectra fit`.")],
    labels: Annotated[list[str], typer.Argument(help="Labels to predict, e.g. 'A+B' 'C'.")],
    out: Annotated[
        Path,
        typer.Option("--out", "-o", help="CSV (or .parquet) to write: rows labels, columns genes."),
    ],
    overwrite: Annotated[bool, typer.Option(help="Replace an existing output file.")] = False,
) -> None:
    """Predict mean expression for labels made of seen perturbations (combinations included)."""
    import pertspectra as ps

    model = ps.model.load_model(model_dir)
    pred = ps.predict.predict(model, labels)
    ps.io.write_table(pred, out, overwrite=overwrite, inputs=(model_dir / "model.json",))
    typer.echo(f"wrote {pred.shape[0]} label(s) x {pred.shape[1]} genes to {out}")


@command(app, "info")
def info(model_dir: Annotated[Path, typer.Argument(help="Model folder.")]) -> None:
    """Describe a saved model."""
    import pertspectra as ps

    model = ps.model.load_model(model_dir)
    typer.echo(model.summary())
    typer.echo(
        "labels: " + ", ".join(model.labels[:20]) + (" ..." if len(model.labels) > 20 else "")
    )
