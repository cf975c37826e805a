"""Commands on model folders: ``pertspectra predict``, ``info`` and ``seed-agreement``.

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


@command(app, "seed-agreement")
def seed_agreement(
    model_dirs: Annotated[
        list[Path],
        typer.Argument(help="Two or more model folders of one screen fitted with other --seed."),
    ],
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            help="CSV (or .parquet) of the best fit's programs: matched correlation in each "
            "other fit, median, min, reproduced, top genes.",
        ),
    ] = None,
    threshold: Annotated[
        float, typer.Option(help="A program is reproduced at this median matched correlation.")
    ] = 0.9,
    overwrite: o.Overwrite = False,
) -> None:
    """Compare fits that differ in their seed: objectives, predicted changes and programs."""
    import pertspectra as ps

    models = []
    for d in model_dirs:
        model = _conditions.load(d)
        if not isinstance(model, ps.model.FittedModel):
            msg = f"{d} was fitted with --condition-key; seed-agreement compares plain fits"
            raise ValueError(msg)
        models.append(model)
    agree = ps.evaluate.seed_agreement(models, threshold=threshold)
    s, fits, pairs = agree.summary, agree.fits, agree.pairs
    typer.echo(
        f"{s['n_fits']} fits, {s['n_factors']} factors; objective "
        f"{fits['final_loss'].min():.6g} to {fits['final_loss'].max():.6g} (spread "
        f"{s['objective_spread']:.2e}, {100 * s['objective_spread_deviance']:.3g}% of the "
        "deviance range)"
    )
    typer.echo(
        f"predicted changes: Pearson between fits {pairs['change_pearson'].min():.3f} to "
        f"{pairs['change_pearson'].max():.3f}"
    )
    typer.echo(
        f"programs of the best fit ({model_dirs[s['reference']]}) reproduced in the others "
        f"(median matched r >= {threshold:g}): {s['reproduced_factors']} of {s['n_factors']}; "
        f"median matched r over all pairs {s['factor_r_median']:.2f}"
    )
    if out is not None:
        ps.io.write_table(
            agree.factors,
            out,
            overwrite=overwrite,
            inputs=tuple(d / "model.json" for d in model_dirs),
        )
        typer.echo(f"wrote {len(agree.factors)} programs to {out}")
