"""``pertspectra run``: the whole analysis into one folder; ``pertspectra report``: its HTML.

Stages (each with its own outputs under ``--out``; see :mod:`pertspectra.report._collect`):
``prior`` (with ``--string``) -> ``fit`` -> ``evaluate`` -> ``programs`` (with
``--gene-sets``) -> ``similarity`` -> ``report``. Each stage is the command of the same name,
called with the options given here. ``manifest.json`` records, per stage, a hash of its
settings, of the checksums of its input files and of the stages it reads; a rerun into the same
folder skips a stage whose hash is unchanged and whose outputs exist, and redoes the others.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import shutil
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from .._utils import file_checksum
from . import _options as o
from ._common import command, input_file, split_list

app = typer.Typer()

#: Stages in order; ``report`` always runs (it only reads).
ORDER = ("prior", "fit", "evaluate", "programs", "similarity", "report")


def _hash(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


class _Manifest:
    def __init__(self, out: Path, command_line: str, data: Path, seed: int) -> None:
        import pertspectra as ps

        self.path = out / ps.report.MANIFEST
        old = json.loads(self.path.read_text()) if self.path.is_file() else {}
        self.old_stages: dict[str, Any] = old.get("stages", {})
        self.checksums: dict[str, str] = {}
        self.doc: dict[str, Any] = {
            "command": command_line,
            "data": str(data),
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "seed": seed,
            "versions": ps.model.versions(),
            "inputs": {},
            "stages": {},
        }

    def checksum(self, path: Path) -> str:
        key = str(path.resolve())
        if key not in self.checksums:
            self.checksums[key] = file_checksum(path)
            self.doc["inputs"][str(path)] = self.checksums[key]
        return self.checksums[key]

    def save(self) -> None:
        from pertspectra.io import write_json

        write_json(self.doc, self.path)


@command(app, "run")
def run(
    ctx: typer.Context,
    data: Annotated[Path, typer.Argument(help="Screen .h5ad: cells x genes, or per-label means.")],
    out: o.Out,
    perturbation_key: Annotated[str, typer.Option(help="obs column with perturbation labels.")],
    condition_key: o.ConditionKey = None,
    condition_factors: o.ConditionFactors = None,
    control: o.Control = None,
    pseudobulk: Annotated[
        bool, typer.Option("--pseudobulk", help="DATA holds one mean per label (no cells).")
    ] = False,
    n_cells_key: Annotated[
        str | None, typer.Option(help="obs column of cells per label (pseudobulk input).")
    ] = None,
    normalize: o.Normalize = None,
    target_sum: o.TargetSum = 1e4,
    exclude_labels: o.ExcludeLabels = None,
    separator: o.Separator = "+",
    layer: o.Layer = None,
    min_cells: o.MinCells = 50,
    string: Annotated[
        Path | None,
        typer.Option(
            "--string",
            help="STRING file: builds the prior graph (stage prior) and runs the recovery test.",
        ),
    ] = None,
    min_score: Annotated[
        float | None, typer.Option(help="Minimum STRING score on 0-1 (default 0.7).")
    ] = None,
    gene_info: Annotated[
        Path | None, typer.Option(help="NCBI gene_info to look up var names in STRING.")
    ] = None,
    gene_sets: Annotated[
        list[Path] | None,
        typer.Option("--gene-sets", help="GMT or OrgDb file(s): names programs and clusters."),
    ] = None,
    pairs: Annotated[
        list[Path] | None,
        typer.Option("--pairs", help="Known gene-pair file (entity1,entity2); repeatable."),
    ] = None,
    method: Annotated[str, typer.Option(help="Program scoring: 'ulm', 'gsea' or 'ora'.")] = "ulm",
    protocol: Annotated[
        str, typer.Option(help="'combinations', 'cells' or 'auto' (combinations when possible).")
    ] = "auto",
    folds: Annotated[int, typer.Option(help="Evaluation folds or splits.")] = 5,
    split_seed: Annotated[int, typer.Option(help="Seed of the evaluation split.")] = 1,
    ceiling_layers: Annotated[
        str | None, typer.Option(help="Two layers with half-split means (pseudobulk).")
    ] = None,
    no_evaluate: Annotated[
        bool, typer.Option("--no-evaluate", help="Skip the evaluation stage.")
    ] = False,
    embedding: Annotated[str, typer.Option(help="Similarity embedding.")] = "gene_change",
    metric: Annotated[str, typer.Option(help="Similarity metric.")] = "correlation",
    n_clusters: Annotated[
        int | None, typer.Option(help="Flat clusters (default: best silhouette).")
    ] = None,
    permutations: Annotated[int, typer.Option(help="Permutations (GSEA, pair p-values).")] = 1000,
    encoding: o.Encoding = "gene",
    no_graph: o.NoGraph = False,
    parametrization: o.Parametrization = "effects",
    n_factors: o.NFactors = None,
    lam: o.Lam = 1.0,
    rho: o.Rho = 0.05,
    delta: o.Delta = 0.001,
    max_epochs: o.MaxEpochs = 10_000,
    schedule: o.Schedule = "cosine",
    cycle_epochs: o.CycleEpochs = 1000,
    converged_tol: o.ConvergedTol = 1e-3,
    stopping: o.Stopping = "relative",
    tol: o.Tol = 1e-5,
    patience: o.Patience = 50,
    n_init: o.NInit = 1,
    threads: o.Threads = None,
    seed: o.Seed = 0,
    device: o.Device = "auto",
    dtype: o.Dtype = "float32",
    matmul_precision: o.MatmulPrecision = None,
    w_rate_scale: o.WRateScale = 1.0,
    init: o.Init = "auto",
    overwrite: Annotated[
        bool,
        typer.Option(help="Use an --out folder that is not empty and was not written by run."),
    ] = False,
    progress: o.Progress = True,
) -> None:
    """The whole analysis of a screen into one folder, ending with report.html."""
    import pertspectra as ps

    from . import _evaluate, _interpret, _prior, _similarity

    input_file(data)
    for extra in [string, gene_info, *(gene_sets or []), *(pairs or [])]:
        if extra is not None:
            input_file(extra, "input file")
    manifest_file = out / ps.report.MANIFEST
    if out.exists() and any(out.iterdir()) and not manifest_file.is_file() and not overwrite:
        msg = f"{out} is not empty and holds no {ps.report.MANIFEST} from `pertspectra run`; pass --overwrite to use it"
        raise FileExistsError(msg)
    fit_opts = o.fit_options(
        encoding=encoding, prior_key=None, no_graph=no_graph, parametrization=parametrization,
        n_factors=n_factors, lam=lam, rho=rho, delta=delta, max_epochs=max_epochs,
        schedule=schedule, cycle_epochs=cycle_epochs, converged_tol=converged_tol,
        stopping=stopping, tol=tol, patience=patience, n_init=n_init, threads=threads, dtype=dtype,
        device=device, matmul_precision=matmul_precision, w_rate_scale=w_rate_scale, init=init,
    )  # fmt: skip
    fit_opts.pop("prior_key")
    labels_opts: dict[str, Any] = {
        "perturbation_key": perturbation_key, "control": split_list(control) or None,
        "exclude_labels": split_list(exclude_labels) or None, "separator": separator,
        "layer": layer,
    }  # fmt: skip
    data_opts: dict[str, Any] = {
        **labels_opts, "pseudobulk": pseudobulk, "n_cells_key": n_cells_key,
        "normalize": normalize, "target_sum": target_sum, "min_cells": min_cells,
    }  # fmt: skip
    if condition_key is not None:  # hashed only when given: plain runs keep their stage hashes
        data_opts |= {"condition_key": condition_key, "condition_factors": condition_factors}
    out.mkdir(parents=True, exist_ok=True)
    man = _Manifest(out, command_line(ctx), data, seed)
    prior_file = out / ps.report.STAGES["prior"]
    model_dir = out / ps.report.STAGES["fit"]
    graph_file = prior_file if string is not None else None  # graph only: fit reads DATA

    def files(*paths: Path | None) -> dict[str, str]:
        return {str(p): man.checksum(p) for p in paths if p is not None}

    plan: dict[str, tuple[dict[str, Any], list[str], Any] | None] = {}
    plan["prior"] = None
    if string is not None:
        plan["prior"] = (
            {"files": files(data, string, gene_info), "min_score": min_score, **labels_opts},
            [],
            lambda: _prior.prior(
                data=data,
                string=string,
                out=prior_file,
                min_score=min_score,
                gene_info=gene_info,
                perturbation_key=perturbation_key,
                separator=separator,
                control=labels_opts["control"],
                overwrite=True,
            ),
        )
    upstream_prior = ["prior"] if string is not None else []
    # what the fit and evaluate stages pass alike to their commands
    fitting = {
        "data": data, "prior": graph_file, "seed": seed, "overwrite": True, "progress": progress,
        "pseudobulk": pseudobulk, "n_cells_key": n_cells_key, "normalize": normalize,
        "target_sum": target_sum, "min_cells": min_cells,
        **_cli_labels(labels_opts), **_cli_fit(fit_opts),
        "condition_key": condition_key, "condition_factors": condition_factors,
    }  # fmt: skip
    plan["fit"] = (
        {"files": {} if string else files(data), **data_opts, **fit_opts, "seed": seed},
        upstream_prior,
        lambda: _fit_stage(model_dir, fitting),
    )
    plan["evaluate"] = None
    if not no_evaluate:
        ev = {"protocol": protocol, "folds": folds, "split_seed": split_seed,
              "ceiling_layers": ceiling_layers}  # fmt: skip
        plan["evaluate"] = (
            {"files": {} if string else files(data), **data_opts, **fit_opts, **ev, "seed": seed},
            upstream_prior,
            lambda: _evaluate.evaluate(out=out / ps.report.STAGES["evaluate"], **ev, **fitting),
        )
    plan["programs"] = None
    if gene_sets:
        plan["programs"] = (
            {
                "files": files(*gene_sets, string),
                "method": method,
                "permutations": permutations,
                "seed": seed,
            },
            ["fit", *upstream_prior],
            lambda: _interpret.programs(
                model_dir=model_dir,
                gene_sets=list(gene_sets),
                out=out / ps.report.STAGES["programs"],
                method=method,
                data=prior_file if string is not None else None,
                string=string,
                permutations=permutations,
                seed=seed,
                overwrite=True,
            ),
        )
    plan["similarity"] = (
        {
            "files": files(*(pairs or []), *(gene_sets or [])),
            "embedding": embedding,
            "metric": metric,
            "n_clusters": n_clusters,
            "permutations": permutations,
            "seed": seed,
            **data_opts,
        },
        ["fit", *upstream_prior] if string else ["fit"],
        lambda: _similarity.similarity(
            model_dir=model_dir,
            out=out / ps.report.STAGES["similarity"],
            embedding=embedding,
            metric=metric,
            data=data,
            perturbation_key=perturbation_key,
            pseudobulk=pseudobulk,
            control=labels_opts["control"],
            exclude_labels=labels_opts["exclude_labels"],
            normalize=normalize,
            min_cells=min_cells,
            condition_key=condition_key,
            pairs=list(pairs) if pairs else None,
            gene_sets=list(gene_sets) if gene_sets else None,
            n_clusters=n_clusters,
            permutations=permutations,
            seed=seed,
            overwrite=True,
        ),
    )
    stages = [s for s in ORDER if s == "report" or plan.get(s) is not None]
    hashes: dict[str, str] = {}
    for i, stage in enumerate(stages, start=1):
        head = f"[{i}/{len(stages)}] {stage}"
        if stage == "report":
            t0 = time.perf_counter()
            man.doc["finished"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
            man.save()
            path = ps.report.build_report(out)
            man.doc["stages"]["report"] = {
                "status": "ran", "seconds": round(time.perf_counter() - t0, 2),
                "outputs": [ps.report.REPORT],
            }  # fmt: skip
            man.save()
            typer.echo(f"{head}: written to {path} ({time.perf_counter() - t0:.1f} s)")
            continue
        entry = plan[stage]
        assert entry is not None
        settings, upstream, action = entry
        output = out / ps.report.STAGES[stage]
        digest = _hash(
            {"stage": stage, "settings": settings, "upstream": [hashes[u] for u in upstream]}
        )
        hashes[stage] = digest
        old = man.old_stages.get(stage, {})
        if old.get("hash") == digest and output.exists():
            man.doc["stages"][stage] = {**old, "status": "skipped (unchanged)"}
            man.save()
            typer.echo(f"{head}: unchanged, skipped")
            continue
        typer.echo(f"{head} ...")
        t0 = time.perf_counter()
        if output.is_dir():
            shutil.rmtree(output)
        action()
        seconds = time.perf_counter() - t0
        man.doc["stages"][stage] = {
            "status": "ran", "hash": digest, "settings": settings,
            "seconds": round(seconds, 2), "outputs": [ps.report.STAGES[stage]],
        }  # fmt: skip
        man.save()
        typer.echo(f"{head}: done in {seconds:.1f} s")
    for stage in ORDER[:-1]:  # outputs of stages no longer asked for are stale
        if plan.get(stage) is None and (out / ps.report.STAGES[stage]).exists():
            typer.echo(
                f"note: {out / ps.report.STAGES[stage]} is from an earlier run with other options"
            )


def command_line(ctx: typer.Context) -> str:
    """The running command as a shell line (from the parsed values, non-defaults only)."""
    import shlex

    parts = ["pertspectra", ctx.info_name or "run"]
    for param in ctx.command.params:
        value = ctx.params.get(param.name or "")
        if param.param_type_name == "argument":
            parts.append(shlex.quote(str(value)))
            continue
        if value is None or value == param.default or value in ([], ()):
            continue
        opts = list(getattr(param, "opts", []))
        longest = max(opts, key=len)
        if getattr(param, "is_flag", False):
            secondary = list(getattr(param, "secondary_opts", []) or [])
            parts.append(longest if value else max(secondary or [longest], key=len))
            continue
        for item in value if getattr(param, "multiple", False) else [value]:
            parts += [longest, shlex.quote(str(item))]
    return " ".join(parts)


def _cli_labels(opts: dict[str, Any]) -> dict[str, Any]:
    return {
        "perturbation_key": opts["perturbation_key"],
        "control": opts["control"],
        "exclude_labels": opts["exclude_labels"],
        "separator": opts["separator"],
        "layer": opts["layer"],
    }


def _fit_stage(model_dir: Path, fitting: dict[str, Any]) -> None:
    """``fit`` into ``model_dir``; an interruption says how ``run`` continues (not ``--resume``)."""
    from . import _fit, _resume

    try:
        _fit.fit(out=model_dir, **fitting)
    except KeyboardInterrupt as err:
        when = _resume.interrupted_when(err)
        msg = (
            f"{when}; run the same `pertspectra run` command again: finished stages are "
            "skipped and the fit starts again"
        )
        raise KeyboardInterrupt(msg) from None


def _cli_fit(opts: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in opts.items() if k != "graph"}
    out["no_graph"] = not opts["graph"]
    return out


@command(app, "report")
def report(
    results: Annotated[Path, typer.Argument(help="Results folder (pertspectra run --out DIR).")],
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="HTML file (default DIR/report.html).")
    ] = None,
    title: Annotated[str | None, typer.Option(help="Report title.")] = None,
    overwrite: o.Overwrite = False,
) -> None:
    """Build DIR/report.html from the stored results in DIR (computes nothing new)."""
    import pertspectra as ps

    target = out if out is not None else results / ps.report.REPORT
    if target.exists() and not overwrite:
        msg = f"{target} already exists; pass --overwrite to replace it"
        raise FileExistsError(msg)
    path = ps.report.build_report(results, out=out, title=title)
    typer.echo(f"report written to {path}")
