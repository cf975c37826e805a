"""The report's figures: :mod:`pertspectra.pl` drawn on stored results, embedded as PNG."""

from __future__ import annotations

import base64
import io
import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..design import CONTROL_LABEL, LabelParser
from ._verdict import model_methods

if TYPE_CHECKING:
    from ._collect import Results

logger = logging.getLogger(__name__)

#: Embedding drawn when the similarity settings do not say (``pertspectra similarity``'s).
DEFAULT_EMBEDDING = "gene_change"
#: Resolution of the embedded PNGs.
DPI = 96


@dataclass
class Figure:
    """One embedded figure: a title, a caption and the PNG as a data URI (empty on failure)."""

    title: str
    caption: str
    uri: str = ""
    error: str = ""


def render(draw: Callable[..., Any], *, size: tuple[float, float] = (7.0, 4.5)) -> str:
    """Draw with ``draw(ax=ax)`` on a new (pyplot-free) figure; return a PNG data URI."""
    from matplotlib.figure import Figure as MplFigure

    fig = MplFigure(figsize=size, layout="constrained")
    ax = fig.subplots()
    draw(ax=ax)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _figure(
    title: str, caption: str, draw: Callable[..., Any], size: tuple[float, float] = (7.0, 4.5)
) -> Figure:
    try:
        return Figure(title, caption, render(draw, size=size))
    except Exception as err:  # a figure that cannot be drawn must not lose the whole report
        logger.warning("report: figure %r not drawn: %s", title, err)
        return Figure(title, caption, "", f"{type(err).__name__}: {err}")


def fit_figures(results: Results) -> list[Figure]:
    """The loss curve."""
    from ..pl import loss

    if results.model is None:
        return []
    return [
        _figure(
            "Training loss",
            "The objective per epoch with its reconstruction (Poisson) and graph parts; dotted "
            "lines mark where the learning rate stepped down.",
            lambda ax: loss(results.model, ax=ax),
        )
    ]


def prior_figures(results: Results) -> list[Figure]:
    """Prior coverage."""
    from ..pl import prior_coverage

    report = results.prior
    if report is None:
        return []
    return [
        _figure(
            "Prior coverage",
            "Genes and perturbed genes with at least one edge in the prior graph (inset: edges "
            "per gene).",
            lambda ax: prior_coverage(report, degrees=results.prior_degrees, ax=ax),
            # the inset histogram sits right of the bars: the plot's own width with degrees
            size=(10.0, 4.5) if results.prior_degrees is not None else (7.0, 4.5),
        )
    ]


def on_target_table(results: Results, method: str) -> pd.DataFrame:
    """Each held-out single perturbation's own target gene: observed vs predicted change."""
    card = results.scorecard
    assert card is not None
    predicted, observed = (t.groupby(level="label").mean() for t in card.changes(method))
    parser = results.model.design.parser if results.model is not None else LabelParser()
    rows = []
    for label in observed.index:
        if label == CONTROL_LABEL:
            continue
        targets = parser.tokens(label)
        if len(targets) != 1 or targets[0] not in observed.columns:
            continue
        gene = targets[0]
        rows.append(
            {
                "label": label,
                "gene": gene,
                "observed": float(observed.at[label, gene]),
                "predicted": float(predicted.at[label, gene]),
            }
        )
    return pd.DataFrame(rows, columns=["label", "gene", "observed", "predicted"])


def scorecard_figures(results: Results) -> list[Figure]:
    """Scorecard distributions, win rates, predicted vs observed, targets, interactions."""
    from ..pl import (
        interaction,
        interaction_summary,
        on_target,
        predicted_vs_observed,
        scorecard,
        win_rates,
    )

    card = results.scorecard
    if card is None:
        return []
    out = []
    methods = model_methods(card)
    method = methods[0] if methods else "pertspectra"
    for regime in sorted(card.metrics["regime"].unique()):
        for metric in ("pearson_delta", "mse_top20"):
            if not ((card.metrics["regime"] == regime) & (card.metrics["metric"] == metric)).any():
                continue
            out.append(
                _figure(
                    f"{metric} per method ({regime})",
                    f"One point per held-out label and fold; the model's win rate against each "
                    f"baseline is written above it ({metric}; "
                    f"{'lower' if metric.startswith(('mse', 'mae')) else 'higher'} is better).",
                    partial(
                        scorecard,
                        card.metrics,
                        metric=metric,
                        regime=regime,
                        summary=card.summary,
                        method=method,
                    ),
                )
            )
        out.append(
            _figure(
                f"Win rates ({regime})",
                f"Share of held-out labels on which {method} beats each baseline, per metric "
                "(0.5: as good as the baseline).",
                partial(win_rates, card.summary, method=method, regime=regime),
                size=(7.0, 4.0),
            )
        )
    try:
        predicted, observed = (t.groupby(level="label").mean() for t in card.changes(method))
    except KeyError:
        return out
    zero = pd.Series(0.0, index=observed.columns)
    out.append(
        _figure(
            "Predicted vs observed change",
            "Each point a gene of a held-out label: observed change from the training control "
            "mean (x) against the predicted change (y), for the labels with the largest changes.",
            lambda ax: predicted_vs_observed(predicted, observed, zero, ax=ax),
            size=(6.0, 5.0),
        )
    )
    targets = on_target_table(results, method)
    if len(targets) >= 2:
        out.append(
            _figure(
                "Targeted genes' own change",
                "For perturbations whose target gene is measured: its observed change (x) "
                "against the predicted change (y). A CRISPRi knockdown should be negative in both.",
                lambda ax: on_target(targets, ax=ax),
                size=(6.0, 5.0),
            )
        )
    combos = card.metrics[card.metrics["regime"] == "combinations"]
    if not combos.empty and "additive" in set(combos["method"]):
        out.append(
            _figure(
                "Combinations: model vs additive",
                f"One point per held-out combination: the additive baseline's Pearson-delta (x) "
                f"against {method}'s (y); above the line {method} is better.",
                lambda ax: interaction_summary(card.metrics, method=method, ax=ax),
                size=(6.0, 5.0),
            )
        )
        for fold, label in _strongest_doubles(card, combos, n=2):
            obs = card.observed[fold].loc[label]
            control = card.predictions[(fold, "control")].loc[label]
            add = card.predictions[(fold, "additive")].loc[label]
            pred = card.predictions[(fold, method)].loc[label]
            out.append(
                _figure(
                    f"Interaction: {label}",
                    "The genes that change most in this held-out combination: observed, the "
                    "additive expectation and the model's prediction, each against control.",
                    partial(interaction, obs, add, pred, control=control, label=label),
                    size=(8.0, 4.0),
                )
            )
    return out


def _strongest_doubles(card: Any, combos: pd.DataFrame, n: int) -> list[tuple[int, str]]:
    seen: list[tuple[float, int, str]] = []
    for fold, obs in card.observed.items():
        if (fold, "control") not in card.predictions or (fold, "additive") not in card.predictions:
            continue
        labels = [lab for lab in obs.index if lab in set(combos["label"])]
        labels = [lab for lab in labels if lab in card.predictions[(fold, "additive")].index]
        if not labels:
            continue
        control = card.predictions[(fold, "control")].loc[labels]
        norms = np.linalg.norm(obs.loc[labels].to_numpy() - control.to_numpy(), axis=1)
        seen += [(float(v), int(fold), str(lab)) for v, lab in zip(norms, labels, strict=True)]
    seen.sort(reverse=True)
    out, used = [], set()
    for _, fold, label in seen:
        if label not in used:
            out.append((fold, label))
            used.add(label)
        if len(out) == n:
            break
    return out


def program_figures(results: Results) -> list[Figure]:
    """Program heat map and perturbation x program effects."""
    from ..pl import perturbation_programs, programs

    progs = results.programs
    if progs is None:
        return []
    d = progs["diagnostics"]
    names = d["name"].astype(str).to_dict() if d is not None and "name" in d else None
    out = []
    if progs["genes"] is not None and len(progs["genes"]):
        chosen = _strongest_programs(progs, n=12)
        out.append(
            _figure(
                "Programs: top genes",
                "Loadings of each program's top genes (the programs the perturbations move "
                "most); columns named by the best gene set at FDR <= 0.05.",
                lambda ax: programs(progs["genes"], names=names, programs=chosen, n_genes=4, ax=ax),
                size=(9.0, 9.0),
            )
        )
    if progs["perturbations"] is not None and len(progs["perturbations"]):
        out.append(
            _figure(
                "Perturbations x programs",
                "Each perturbation's signed effect on each program (expression added or removed "
                "relative to control), clustered.",
                lambda ax: perturbation_programs(progs["perturbations"], names=names, ax=ax),
                size=(9.0, 7.5),
            )
        )
    return out


def _strongest_programs(progs: dict, n: int) -> list[str] | None:
    table = progs["perturbations"]
    if table is None or table.empty:
        return None
    strength = table.groupby("program")["effect"].apply(lambda s: s.abs().max())
    listed = set(progs["genes"]["program"])
    return [p for p in strength.sort_values(ascending=False).index if p in listed][:n]


def similarity_figures(results: Results) -> list[Figure]:
    """Clustered similarity heat map and precision-recall curves."""
    from ..pl import precision_recall, similarity

    sim = results.similarity
    if sim is None:
        return []
    clusters = sim["clusters"]
    labels = clusters["cluster"] if clusters is not None and "cluster" in clusters else None
    terms = None
    if clusters is not None and "top_terms" in clusters:
        terms = (
            clusters.dropna(subset=["top_terms"]).groupby("cluster")["top_terms"].first().to_dict()
        )
    out = [
        _figure(
            "Similarity of perturbations",
            f"{sim['settings'].get('metric', 'Similarity')} of the perturbations' "
            f"{sim['settings'].get('embedding', 'embeddings')}, ordered by hierarchical "
            "clustering; the strip marks the clusters.",
            lambda ax: similarity(sim["similarity"], clusters=labels, terms=terms, ax=ax),
            size=(9.0, 8.0),
        )
    ]
    curves = sim["pr_curves"]
    if curves is not None and len(curves):
        shown = {sim["settings"].get("embedding", DEFAULT_EMBEDDING), "data_change"}
        if curves["embedding"].isin(shown).any():
            curves = curves[curves["embedding"].isin(shown)]
        out.append(
            _figure(
                "Precision-recall against known pairs",
                "Pairs of perturbations ranked by the similarity of the model's embedding and "
                "of the observed changes (data_change), scored against each gene-pair file; "
                "dotted: the share of known pairs (chance). All embeddings: pr_curves.csv.",
                lambda ax: precision_recall(curves, ax=ax),
                size=(7.0, 5.0),
            )
        )
    return out
