"""The report's plain-language verdict and warnings, read off the stored results."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..enrich import condition_fit_warnings, fit_warnings
from ..evaluate._metrics import LOWER_IS_BETTER
from ..evaluate._summary import BASELINES, CEILING
from ..model import ConditionModel

if TYPE_CHECKING:
    from ..evaluate import Scorecard
    from ._collect import Results

#: Metrics the verdict speaks of, with their names in words.
HEADLINE = {
    "pearson_delta": "Pearson correlation of the predicted and observed change (all genes)",
    "pearson_delta_top20": "the same on the 20 most changed genes",
    "mse_top20": "mean squared error on the 20 most changed genes",
}
REGIMES = {
    "combinations": "held-out combinations (predicted from their single perturbations)",
    "cells": "held-out cells of perturbations seen in training",
}


def model_methods(card: Scorecard) -> list[str]:
    """The fitted models' method names in a scorecard (not baselines, ceiling or others)."""
    fits = list(card.settings.get("fits", {}) or {})
    present = set(card.metrics["method"].unique())
    named = [m for m in fits if m in present]
    if named:
        return named
    others = set(card.settings.get("predictions", []) or [])
    return sorted(present - set(BASELINES) - {CEILING} - others)


def _mean(card: Scorecard, regime: str, method: str, metric: str) -> float:
    rows = card.summary[
        (card.summary["regime"] == regime)
        & (card.summary["method"] == method)
        & (card.summary["metric"] == metric)
    ]
    return float(rows["mean"].iloc[0]) if len(rows) else float("nan")


def _win(card: Scorecard, regime: str, method: str, metric: str, versus: str) -> float:
    rows = card.summary[
        (card.summary["regime"] == regime)
        & (card.summary["method"] == method)
        & (card.summary["metric"] == metric)
        & (card.summary["versus"] == versus)
    ]
    return float(rows["win_rate"].iloc[0]) if len(rows) else float("nan")


def best_baseline(card: Scorecard, regime: str, metric: str = "pearson_delta") -> str | None:
    """The baseline with the best mean ``metric`` in ``regime`` (``control`` never counts)."""
    sign = -1.0 if metric in LOWER_IS_BETTER else 1.0
    scores = {b: _mean(card, regime, b, metric) for b in BASELINES if b != "control"}
    scores = {b: v for b, v in scores.items() if np.isfinite(v)}
    return max(scores, key=lambda b: sign * scores[b]) if scores else None


def scorecard_verdict(card: Scorecard) -> list[str]:
    """Sentences comparing each fitted model with the best baseline and the ceiling."""
    out = []
    regimes = sorted(card.metrics["regime"].unique())
    for method in model_methods(card):
        for regime in regimes:
            base = best_baseline(card, regime)
            n = card.metrics[
                (card.metrics["regime"] == regime)
                & (card.metrics["method"] == method)
                & (card.metrics["metric"] == "pearson_delta")
            ]
            if n.empty or base is None:
                continue
            n_labels, n_folds = n["label"].nunique(), n["fold"].nunique()
            ours = _mean(card, regime, method, "pearson_delta")
            theirs = _mean(card, regime, base, "pearson_delta")
            win = _win(card, regime, method, "pearson_delta", base)
            ceiling = _mean(card, regime, CEILING, "pearson_delta")
            # a difference that does not show at the printed precision is a tie: a fit that
            # reproduces the training means (no prior, a factor per label) scores as they do
            if f"{ours:.3f}" == f"{theirs:.3f}":
                better = "level with"
            else:
                better = "above" if ours > theirs else "below"
            text = (
                f"On {REGIMES.get(regime, regime)} ({n_labels} labels, {n_folds} fold(s)), "
                f"{method} predicts the change with Pearson-delta {ours:.3f}, {better} the best "
                f"baseline ({base}: {theirs:.3f}); it is better on {win:.0%} of the labels"
            )
            if np.isfinite(ceiling):
                text += f". The noise ceiling (half of the cells predicting the other half) is {ceiling:.3f}"
            losses, ties = [], []
            for metric in ("pearson_delta_top20", "mse_top20"):
                a, b = _mean(card, regime, method, metric), _mean(card, regime, base, metric)
                if not (np.isfinite(a) and np.isfinite(b)):
                    continue
                if f"{a:.3f}" == f"{b:.3f}":
                    ties.append(f"{metric} ({a:.3f})")
                elif a > b if metric in LOWER_IS_BETTER else a < b:
                    losses.append(f"{metric} ({a:.3f} vs {b:.3f})")
            if losses:
                text += f". The {base} baseline wins on " + " and ".join(losses)
            if ties:
                text += f". It ties the {base} baseline on " + " and ".join(ties)
            out.append(text + ".")
    return out


def program_verdict(programs: dict, *, n_labels: int = 3, n_programs: int = 2) -> list[str]:
    """Which programs the strongest perturbations move."""
    table = programs.get("perturbations")
    if table is None or table.empty:
        return []
    strength = table.groupby("label")["effect"].apply(lambda s: s.abs().sum())
    out = []
    for label in strength.sort_values(ascending=False).index[:n_labels]:
        rows = table[table["label"] == label].nsmallest(n_programs, "rank")
        parts = []
        for row in rows.itertuples():
            name = getattr(row, "name", row.program)
            name = row.program if not isinstance(name, str) or not name else name
            parts.append(f"{'raises' if row.effect > 0 else 'lowers'} {name} ({row.effect:+.3g})")
        out.append(f"{label} " + "; ".join(parts) + ".")
    if out:
        out.insert(
            0,
            "The perturbations with the largest effects, and the programs they move most "
            "(effect: expression added to or removed from the program, relative to control):",
        )
    return out


def top_pairs(sim: pd.DataFrame, n: int = 5) -> pd.DataFrame:
    """The ``n`` most similar pairs of distinct perturbations."""
    values = sim.to_numpy(dtype=float)
    iu, ju = np.triu_indices(len(sim), k=1)
    v = values[iu, ju]
    ok = np.isfinite(v)
    iu, ju, v = iu[ok], ju[ok], v[ok]
    order = np.argsort(-v, kind="stable")[:n]
    labels = np.asarray(sim.index, dtype=object)
    return pd.DataFrame(
        {"label1": labels[iu[order]], "label2": labels[ju[order]], "similarity": v[order]}
    )


def similarity_verdict(similarity: dict) -> list[str]:
    """Which perturbations act alike, and how the similarity scores against known pairs."""
    sim = similarity["similarity"]
    settings = similarity.get("settings", {})
    out = []
    if len(sim) >= 2:
        pairs = top_pairs(sim, n=5)
        text = ", ".join(f"{r.label1}-{r.label2} ({r.similarity:.2f})" for r in pairs.itertuples())
        out.append(
            f"Most alike ({settings.get('embedding', 'embedding')}, "
            f"{settings.get('metric', 'similarity')}): {text}."
        )
    clusters = similarity.get("clusters")
    if clusters is not None and "cluster" in clusters:
        sizes = clusters["cluster"].value_counts()
        out.append(
            f"{len(sizes)} clusters of perturbations (largest {int(sizes.max())}, "
            f"{int((sizes == 1).sum())} singletons)."
        )
    bench = similarity.get("benchmark")
    if bench is not None and not bench.empty:
        chosen = settings.get("embedding")
        ap = bench[
            (bench["score"] == "average_precision")
            & (bench["metric"] == settings.get("metric", bench["metric"].iloc[0]))
        ]
        for fname, block in ap.groupby("pairs_file", sort=True):
            row = block[block["embedding"] == chosen] if chosen else block.iloc[:1]
            if row.empty:
                continue
            r = row.iloc[0]
            text = (
                f"Against {fname} ({int(r['n_positive'])} known pairs among the perturbations), "
                f"average precision {r['value']:.3f} vs {r['prevalence']:.3f} by chance"
            )
            if np.isfinite(r.get("p_value", np.nan)):
                text += f" (permutation p = {r['p_value']:.3g})"
            data = block[block["embedding"] == "data_change"]
            if len(data) and chosen != "data_change":
                text += f"; the observed changes alone reach {data['value'].iloc[0]:.3f}"
            out.append(text + ".")
    return out


def warnings_of(results: Results) -> list[str]:
    """What a reader must know before trusting the results."""
    out = []
    model = results.model
    if model is not None:
        t = model.training
        if not isinstance(model, ConditionModel):
            out.extend(fit_warnings(model))
        else:  # a sentence once, naming the conditions unless it holds in all of them
            out.extend(line[:1].upper() + line[1:] for line in condition_fit_warnings(model))
            missing = t.get("statistics", {}).get("missing_in_condition", {}) or {}
            for c, labels in missing.items():
                out.append(
                    f"Condition {c} lacks {len(labels)} label(s) (too few cells; not fitted or "
                    f"predicted there): " + ", ".join(map(str, labels[:10]))
                )
        dropped = list(t.get("statistics", {}).get("dropped_labels", []))
        if dropped:
            out.append(
                f"{len(dropped)} label(s) had too few cells and were dropped: "
                + ", ".join(map(str, dropped[:10]))
                + ("..." if len(dropped) > 10 else "")
            )
    if results.programs is not None:
        recovery = results.programs.get("settings", {}).get("recovery") or {}
        # one test, or one per condition (a condition model's programs)
        tests = {"": recovery} if "informative" in recovery else recovery
        for c, rec in tests.items():
            if isinstance(rec, dict) and not rec.get("informative", True):
                out.append(
                    f"The recovery test is uninformative{f' in {c}' if c else ''} here: "
                    f"{rec.get('n_terms')} GO terms enriched in the programs (fewer than 500); "
                    "its fraction says little."
                )
    if results.prior is not None:
        missing = list(results.prior.get("perturbed_without_edges", []))
        if missing:
            out.append(
                f"{len(missing)} perturbed gene(s) have no edge in the prior graph: "
                + ", ".join(map(str, missing[:10]))
            )
    return out
