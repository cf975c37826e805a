"""``build_report``: one self-contained HTML file from a results folder."""

from __future__ import annotations

import datetime as _dt
import html
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..model import ConditionModel
from ._collect import REPORT, Results, collect
from ._conditions import (
    agreement_section,
    condition_data,
    condition_facts,
    condition_results,
    condition_verdict,
    conditions_of,
    scorecard_overview,
    section_id,
)
from ._figures import (
    fit_figures,
    on_target_table,
    prior_figures,
    program_figures,
    scorecard_figures,
    similarity_figures,
)
from ._tables import table_html
from ._verdict import (
    HEADLINE,
    model_methods,
    program_verdict,
    scorecard_verdict,
    similarity_verdict,
    top_pairs,
    warnings_of,
)

logger = logging.getLogger(__name__)


def _data_section(res: Results) -> dict[str, Any]:
    out: dict[str, Any] = {"tables": [], "facts": []}
    model = res.model
    if model is not None:
        t = model.training
        stats = t.get("statistics", {})
        cells = t.get("cells_per_label") or {}
        if cells and any(v is not None for v in cells.values()):
            table = pd.DataFrame(
                {"label": list(cells), "cells": [cells[k] for k in cells]}
            ).sort_values("cells", ascending=False, na_position="last")
            out["tables"].append(("Cells per label", table_html(table)))
        out["facts"] += [
            ("labels fitted", t.get("n_labels")),
            ("cells", t.get("n_cells") if t.get("n_cells") is not None else "unknown (pseudobulk)"),
            ("genes", len(model.genes)),
            ("perturbation key", stats.get("perturbation_key", "")),
            ("controls", ", ".join(map(str, stats.get("controls", [])))),
            ("normalization", stats.get("normalize") or "as given (log-normalized input)"),
            ("min cells per label", stats.get("min_cells")),
            ("excluded labels", ", ".join(map(str, stats.get("exclude_labels", []))) or "none"),
            (
                "dropped labels (too few cells)",
                ", ".join(map(str, stats.get("dropped_labels", []))) or "none",
            ),
        ]
        if isinstance(model, ConditionModel):
            condition_data(model, out)
    if res.prior is not None:
        p = res.prior
        out["facts"] += [
            ("prior source", p.get("file", p.get("source", ""))),
            ("prior edges", p.get("n_edges")),
            ("genes with an edge", f"{p.get('n_genes_with_edges')} of {p.get('n_genes')}"),
            (
                "perturbed genes without an edge",
                ", ".join(map(str, p.get("perturbed_without_edges", []))) or "none",
            ),
            (
                "perturbed genes not measured",
                ", ".join(map(str, p.get("perturbed_not_measured", []))) or "none",
            ),
        ]
    out["figures"] = prior_figures(res)
    return out


def _fit_section(res: Results) -> dict[str, Any]:
    model = res.model
    if model is None:
        return {}
    t = model.training
    keys = [
        "epochs", "converged", "stop_reason", "final_loss", "final_recon", "final_graph", "seconds",
        "seconds_per_epoch", "device", "dtype", "threads", "seed", "n_init", "init", "start", "schedule",
        "cycle_epochs", "betas", "converged_tol", "stopping", "learning_rates", "max_epochs", "prior",
    ]  # fmt: skip
    facts = [("model", line) for line in model.summary().splitlines()]
    facts += [(k, t[k]) for k in keys if k in t]
    facts += [(f"config: {k}", v) for k, v in model.config.to_dict().items()]
    return {"facts": facts, "figures": fit_figures(res)}


def _scorecard_section(res: Results) -> dict[str, Any]:
    card = res.scorecard
    if card is None:
        return {}
    s = card.summary
    head = s[s["metric"].isin(list(HEADLINE))]
    means = head.drop_duplicates(["regime", "method", "metric"]).pivot_table(
        index=["regime", "method"], columns="metric", values="mean"
    )
    methods = model_methods(card)
    wins = s[s["method"].isin(methods) & (s["versus"] != "")][
        ["regime", "method", "metric", "versus", "mean", "win_rate", "wilcoxon_p"]
    ]
    tables = [
        ("Mean per method (headline metrics)", table_html(means.reset_index())),
        ("The model against each baseline", table_html(wins)),
    ]
    if res.model is not None and methods:
        try:
            targets = on_target_table(res, methods[0])
        except KeyError:
            targets = None
        if targets is not None and len(targets):
            tables.append(("Targeted genes' own change (held-out means)", table_html(targets)))
    facts = [
        (k, card.settings.get(k))
        for k in ("protocol", "folds", "split_seed", "seed", "pseudobulk", "ceiling_layers")
    ]
    facts.append(("seconds", round(float(card.settings.get("seconds", np.nan)), 1)))
    return {"tables": tables, "facts": facts, "figures": scorecard_figures(res)}


def _programs_section(res: Results, *, figures: bool = True) -> dict[str, Any]:
    progs = res.programs
    if progs is None:
        return {}
    d = progs["diagnostics"]
    cols = [
        c for c in ("condition", "block", "name", "size", "effective_genes", "top_gene",
                    "top_share", "single_gene", "mean_abs_effect", "prior_enrichment", "top_terms")
        if d is not None and c in d
    ]  # fmt: skip
    diag = (
        d[cols].reset_index().sort_values("mean_abs_effect", ascending=False)
        if d is not None
        else None
    )
    tables = [("Programs (sorted by mean effect)", table_html(diag))]
    if progs.get("recovery_summary") is not None:
        tables.append(("The paper's recovery test", table_html(progs["recovery_summary"])))
    settings = progs.get("settings", {})
    facts = [
        (k, settings.get(k))
        for k in ("method", "n_gene_sets_tested", "fdr", "min_size", "max_size")
    ]
    return {"tables": tables, "facts": facts, "figures": program_figures(res) if figures else []}


def _perturbations_section(res: Results) -> dict[str, Any]:
    progs = res.programs
    if progs is None or progs["perturbations"] is None:
        return {}
    table = progs["perturbations"]
    top = table[table["rank"] <= 3].copy()
    return {"tables": [("Each perturbation's three strongest programs", table_html(top))]}


def _similarity_section(res: Results) -> dict[str, Any]:
    sim = res.similarity
    if sim is None:
        return {}
    tables = [("Most similar pairs", table_html(top_pairs(sim["similarity"], n=20)))]
    bench = sim["benchmark"]
    if bench is not None and len(bench):
        ap = bench[bench["score"] == "average_precision"]
        view = ap.pivot_table(index=["pairs_file", "metric"], columns="embedding", values="value")
        tables.append(
            ("Average precision against known pairs, per embedding", table_html(view.reset_index()))
        )
        tables.append(("All benchmark scores", table_html(bench)))
    settings = sim.get("settings", {})
    facts = [(k, settings.get(k)) for k in ("embedding", "metric", "n_clusters", "permutations")]
    return {"tables": tables, "facts": facts, "figures": similarity_figures(res)}


def _clusters_section(res: Results) -> dict[str, Any]:
    sim = res.similarity
    if sim is None or sim["clusters"] is None:
        return {}
    clusters = sim["clusters"]
    rows = []
    for cid, block in clusters.groupby("cluster", sort=True):
        terms = (
            block["top_terms"].dropna().iloc[0]
            if "top_terms" in block and block["top_terms"].notna().any()
            else ""
        )
        rows.append(
            {
                "cluster": cid,
                "size": len(block),
                "labels": ", ".join(map(str, block.index)),
                "top_terms": terms,
            }
        )
    tables = [("Clusters", table_html(pd.DataFrame(rows)))]
    if sim.get("cluster_terms") is not None:
        tables.append(
            ("Gene sets enriched in each cluster's genes", table_html(sim["cluster_terms"]))
        )
    return {"tables": tables}


def _condition_section(res: Results, condition: str) -> dict[str, Any]:
    """One condition: its programs, what each perturbation moves there, its similarity."""
    part = condition_results(res, condition)
    facts = condition_facts(res, condition)
    figures: list[Any] = []
    tables: list[tuple[str, str]] = []
    has_similarity = part.similarity is not None and part.similarity["similarity"] is not None
    for section in (
        _scorecard_section(part),
        _programs_section(part),
        _perturbations_section(part),
        *((_similarity_section(part), _clusters_section(part)) if has_similarity else ()),
    ):
        figures += section.get("figures", [])
        tables += section.get("tables", [])
    named = [i for i, (name, _) in enumerate(tables) if name.startswith("Programs")]
    if named:
        tables[named[0]] = (
            f"Programs in {condition}: shared and its own (sorted by mean effect here)",
            tables[named[0]][1],
        )
    if not (tables or figures):
        return {}
    return {"facts": facts, "figures": figures, "tables": tables}


def _sections(res: Results) -> list[tuple[str, str, dict[str, Any]]]:
    """The report's sections: one per condition for results of a condition model."""
    conditions = conditions_of(res)
    head = [
        ("data", "Data and quality control", _data_section(res)),
        ("fit", "Fit", _fit_section(res)),
    ]
    tail = [("manifest", "Manifest", _manifest_section(res))]
    card = "scorecard", "Scorecard: predictions against baselines"
    if conditions is None:
        return [
            *head,
            (*card, _scorecard_section(res)),
            ("programs", "Programs", _programs_section(res)),
            ("perturbations", "Perturbations to programs", _perturbations_section(res)),
            ("similarity", "Similarity and benchmarks", _similarity_section(res)),
            ("clusters", "Clustering", _clusters_section(res)),
            *tail,
        ]
    programs = _programs_section(res, figures=False)  # figures: per condition
    if programs:
        programs["tables"][0] = (
            "Every program: shared by all conditions or a condition's own",
            programs["tables"][0][1],
        )
    taken = {"data", "fit", "scorecard", "programs", "agreement", "manifest", "verdict", "warnings"}
    per = [(section_id(c, taken), f"Condition {c}", _condition_section(res, c)) for c in conditions]
    return [
        *head,
        (*card, scorecard_overview(res)),
        ("programs", "Programs (shared and per condition)", programs),
        *per,
        ("agreement", "Across conditions", agreement_section(res)),
        *tail,
    ]


def _manifest_section(res: Results) -> dict[str, Any]:
    m = res.manifest
    facts: list[tuple[str, Any]] = []
    if m.get("command"):
        facts.append(("command", m["command"]))
    for key in ("created", "finished", "seed"):
        if key in m:
            facts.append((key, m[key]))
    versions = dict(m.get("versions", {}))
    if not versions and res.model is not None:
        versions = dict(res.model.versions)
    facts += [(f"version: {k}", v) for k, v in versions.items()]
    inputs = [{"file": k, "sha256": v} for k, v in m.get("inputs", {}).items()]
    stages = [
        {
            "stage": name,
            "status": s.get("status", ""),
            "seconds": s.get("seconds"),
            "outputs": ", ".join(s.get("outputs", [])),
            "hash": str(s.get("hash", ""))[:12],
        }
        for name, s in m.get("stages", {}).items()
    ]
    return {
        "facts": facts,
        "tables": [
            ("Input files", table_html(pd.DataFrame(inputs))),
            ("Stages", table_html(pd.DataFrame(stages))),
        ],
    }


def build_report(
    path: str | os.PathLike,
    *,
    out: str | os.PathLike | None = None,
    title: str | None = None,
) -> Path:
    """Write a self-contained HTML report of a results folder.

    Reads only stored results (:func:`collect`): the model folder, the scorecard, the programs
    and similarity tables, the prior and the manifest; computes nothing but figures and
    summaries of them. Figures are embedded as PNG, tables inline and sortable by a few lines
    of inline script: the file needs no network and can be sent as it is.

    Parameters
    ----------
    path
        A results folder (``pertspectra run --out DIR``).
    out
        Output file; default ``path/report.html`` (replaced atomically).
    title
        Report title; default the data file's name from the manifest.

    Returns
    -------
    The path written.
    """
    from jinja2 import Environment, PackageLoader, select_autoescape

    from .._utils import atomic_path

    res = collect(path)
    target = Path(out) if out is not None else res.path / REPORT
    data_name = res.manifest.get("data") or (
        res.model.training.get("statistics", {}).get("perturbation_key") if res.model else None
    )
    verdict = []
    conditions = conditions_of(res)
    if conditions is not None:
        verdict += condition_verdict(res, conditions)
    else:
        if res.scorecard is not None:
            verdict += scorecard_verdict(res.scorecard)
        if res.programs is not None:
            verdict += program_verdict(res.programs)
        if res.similarity is not None:
            verdict += similarity_verdict(res.similarity)
    sections = _sections(res)
    env = Environment(
        loader=PackageLoader("pertspectra.report", "templates"),
        autoescape=select_autoescape(["html", "j2"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    page = env.get_template("report.html.j2").render(
        title=title
        or f"PertSpectra report: {Path(str(data_name)).name if data_name else res.path.name}",
        created=_dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        verdict=verdict,
        warnings=warnings_of(res),
        sections=[(k, t, s) for k, t, s in sections if s],
        missing=[t for _, t, s in sections if not s],
        stages=res.stages,
        escape=html.escape,
    )
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(target) as tmp:
        tmp.write_text(page, encoding="utf-8")
    logger.debug("report written to %s", target)
    return target
