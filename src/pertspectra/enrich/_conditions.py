"""Programs of a model fitted under several conditions: which are shared, which are a condition's own.

A :class:`~pertspectra.model.ConditionModel` has programs shared by every condition
(``shared_0``, ...; ``model.W``) and programs of each condition's own (``<condition>_0``, ...).
Each condition is a one-condition model (:meth:`~pertspectra.model.ConditionModel.condition`),
so the tables of :func:`interpret_programs` are made per condition with the one-condition
functions and stacked with two columns:

- ``block``: ``"shared"`` (a program of every condition) or ``"own"`` (a condition's own);
- ``condition``: the condition a row holds in; :data:`ALL_CONDITIONS` (``"all"``) for rows that
  hold in every condition.

A shared program's gene loadings (:func:`program_loadings`: ``W`` scaled by the gene scaling and
renormalized) are the same in every condition's view: the views rescale each gene of all their
programs jointly, and the renormalization over genes undoes that. So the shared programs' top
genes, gene-set scores and shape diagnostics are computed once (``condition`` ``"all"``) and
each condition's own programs once per condition; only what a perturbation does to a program
(``P`` is fitted per condition) is listed per condition for every program, shared or own.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from .._utils import atomic_path, check_output_folder
from ..model import ConditionModel
from ._interpret import FILES, Programs
from ._loadings import program_loadings
from ._perturbations import fit_warnings, perturbation_programs, program_diagnostics
from ._programs import TERM_COLUMNS, Method, best_terms, program_names, score_programs, top_genes
from ._recovery import Recovery, recovery_test

#: ``condition`` of rows that hold in every condition (the shared programs' own tables).
ALL_CONDITIONS = "all"
#: ``block`` of a program shared by every condition, and of a condition's own program.
SHARED_BLOCK, OWN_BLOCK = "shared", "own"
#: The ``block`` values.
BLOCKS: tuple[str, ...] = (SHARED_BLOCK, OWN_BLOCK)


def _program_blocks(model: ConditionModel) -> pd.DataFrame:
    """One row per program of the model, indexed by ``program``: its ``block`` and ``condition``."""
    L0 = model.W.shape[0]
    rows = [
        (name, SHARED_BLOCK, ALL_CONDITIONS)
        for name in model.factor_names(model.conditions[0])[:L0]
    ]
    for c in model.conditions:
        rows += [(name, OWN_BLOCK, c) for name in model.factor_names(c)[L0:]]
    table = pd.DataFrame(rows, columns=["program", "block", "condition"])
    if table["program"].duplicated().any():
        dup = table.loc[table["program"].duplicated(), "program"].tolist()
        msg = (
            f"program names {dup[:5]} occur twice (a condition named like the shared block?); "
            "rename the conditions before fitting"
        )
        raise ValueError(msg)
    return table.set_index("program")


def condition_fit_warnings(model: ConditionModel) -> list[str]:
    """:func:`fit_warnings` of each condition of a model, each sentence once.

    Parameters
    ----------
    model
        A model fitted under several conditions.

    Returns
    -------
    The sentences of every condition's :func:`fit_warnings` in order of first appearance; a
    sentence that holds in every condition as it is, one that holds in some conditions only
    prefixed by them (``"in A172: ..."``, ``"in T98G, U87MG: ..."``).
    """
    where: dict[str, list[str]] = {}
    for c in model.conditions:
        for text in fit_warnings(model.condition(c)):
            where.setdefault(text, []).append(c)
    return [
        text if len(conds) == len(model.conditions) else f"in {', '.join(conds)}: {text}"
        for text, conds in where.items()
    ]


def condition_loadings(model: ConditionModel) -> pd.DataFrame:
    """Every program's gene loadings once: the shared ones, then each condition's own.

    Parameters
    ----------
    model
        A model fitted under several conditions.

    Returns
    -------
    Programs x genes DataFrame (rows sum to 1, see :func:`program_loadings`), indexed by
    program name (``shared_0``, ..., ``<condition>_0``, ...). A shared program's row is the
    same in every condition's view (see the module docstring).
    """
    blocks = _program_blocks(model)
    L0 = model.W.shape[0]
    parts = []
    for i, c in enumerate(model.conditions):
        load = program_loadings(model.condition(c))
        parts.append(load.iloc[L0:] if i else load)
    out = pd.concat(parts)
    return out.loc[blocks.index]


def _tag(
    table: pd.DataFrame, blocks: pd.DataFrame, *, condition: str | None = None
) -> pd.DataFrame:
    """``table`` with ``condition`` and ``block`` columns in front (from its ``program``)."""
    out = table.copy()
    block = out["program"].map(blocks["block"])
    where = out["program"].map(blocks["condition"]) if condition is None else condition
    out.insert(0, "block", block)
    out.insert(0, "condition", where)
    return out


@dataclass
class ConditionPrograms(Programs):
    """:class:`Programs` of a model fitted under several conditions (see the module docstring).

    Every table has ``condition`` and ``block`` columns (``diagnostics`` as columns beside its
    ``program`` index); ``recovery`` is ``None`` and ``recoveries`` holds the paper's recovery
    test per condition (when STRING edges were given).

    Attributes
    ----------
    conditions
        The model's conditions, in order.
    recoveries
        Condition -> :class:`Recovery` of that condition's programs and loadings.
    """

    conditions: list[str] = field(default_factory=list)
    recoveries: dict[str, Recovery] = field(default_factory=dict)

    def condition(self, condition: str) -> Programs:
        """The tables of one condition: the shared programs and its own, its perturbations."""
        if condition not in self.conditions:
            msg = f"unknown condition {condition!r}; the conditions: {self.conditions}"
            raise KeyError(msg)

        def rows(t: pd.DataFrame) -> pd.DataFrame:
            keep = (t["block"] == SHARED_BLOCK) | (t["condition"] == condition)
            return t[keep].drop(columns=["condition", "block"])

        perts = self.perturbations[self.perturbations["condition"] == condition]
        diag = rows(self.diagnostics)
        diag["mean_abs_effect"] = (
            perts.groupby("program")["effect"].apply(lambda s: s.abs().mean()).reindex(diag.index)
        )
        return Programs(
            genes=rows(self.genes).reset_index(drop=True),
            terms=rows(self.terms).reset_index(drop=True),
            perturbations=perts.drop(columns=["condition", "block"]).reset_index(drop=True),
            diagnostics=diag,
            names=self.names.reindex(diag.index),
            recovery=self.recoveries.get(condition),
            settings={**self.settings, "condition": condition},
        )

    def top_programs(
        self, label: str, *, n_top: int = 5, condition: str | None = None
    ) -> pd.DataFrame:
        """The ``n_top`` programs a perturbation moves most in each condition (or in one)."""
        names = self.conditions if condition is None else [condition]
        frames = []
        for c in names:
            part = self.condition(c)
            if str(label) not in set(part.perturbations["label"]):
                continue
            top = part.top_programs(label, n_top=n_top)
            top.insert(0, "condition", c)
            top.insert(3, "block", top["program"].map(self.diagnostics["block"]))
            frames.append(top)
        if not frames:
            known = sorted(self.perturbations["label"].unique())[:10]
            msg = f"no perturbation {label!r} in condition(s) {names} (known: {known})"
            raise KeyError(msg)
        return pd.concat(frames, ignore_index=True)

    def write(self, out: str | os.PathLike, *, overwrite: bool = False) -> Path:
        """Write the tables into ``out`` under the names of :data:`FILES` (atomically)."""
        import json

        out = Path(out)
        check_output_folder(out, overwrite=overwrite, allowed=self.FILES, what="a programs folder")
        with atomic_path(out, directory=True) as tmp:
            self.genes.to_csv(tmp / FILES["genes"], index=False)
            self.terms.to_csv(tmp / FILES["terms"], index=False)
            self.perturbations.to_csv(tmp / FILES["perturbations"], index=False)
            self.diagnostics.to_csv(tmp / FILES["diagnostics"])
            if self.recoveries:
                tables, summaries = [], []
                for c, rec in self.recoveries.items():
                    tables.append(rec.table.assign(condition=c))
                    summaries.append(rec.summary().assign(condition=c))
                for name, frames in (("recovery", tables), ("recovery_summary", summaries)):
                    table = pd.concat(frames, ignore_index=True)
                    table = table[["condition", *[c for c in table if c != "condition"]]]
                    table.to_csv(tmp / FILES[name], index=False)
            (tmp / FILES["settings"]).write_text(json.dumps(self.settings, indent=1, default=str))
        return out


def interpret_conditions(
    model: ConditionModel,
    gene_sets: Mapping[str, Iterable[str]],
    *,
    method: Method = "ulm",
    min_size: int = 10,
    max_size: int | None = 300,
    n_genes: int = 20,
    n_terms: int = 3,
    fdr: float = 0.05,
    prior: pd.DataFrame | None = None,
    string: pd.DataFrame | None = None,
    permutations: int = 1000,
    n_shuffles: int = 10,
    seed: int = 0,
) -> ConditionPrograms:
    """:func:`interpret_programs` for a model fitted under several conditions.

    Parameters
    ----------
    model
        A :class:`~pertspectra.model.ConditionModel`.
    gene_sets, method, min_size, max_size, n_genes, n_terms, fdr, prior, string, permutations, n_shuffles, seed
        As :func:`interpret_programs`. All programs (shared and own) are scored in one call
        (BH per program, so each program's FDR is what it would be alone).

    Returns
    -------
    A :class:`ConditionPrograms`:

    - ``genes``, ``terms``: the shared programs once (``block`` ``"shared"``, ``condition``
      ``"all"``), each condition's own programs (``block`` ``"own"``, ``condition`` set);
    - ``perturbations``: one row per (condition, label, program) for the labels fitted in that
      condition, every program of the condition (``rank`` within the condition and label);
    - ``diagnostics``: indexed by program, with ``condition`` and ``block``;
      ``mean_abs_effect`` is taken over every (condition, label) row of the program (per
      condition: :meth:`ConditionPrograms.condition`);
    - ``recoveries``: the recovery test per condition, with ``string``.

    Raises
    ------
    TypeError
        If ``model`` is a one-condition model (use :func:`interpret_programs`).
    """
    import time

    if not isinstance(model, ConditionModel):
        msg = f"interpret_conditions needs a ConditionModel (got {type(model).__name__}); use interpret_programs"
        raise TypeError(msg)
    start = time.perf_counter()
    blocks = _program_blocks(model)
    loadings = condition_loadings(model)
    terms = score_programs(
        loadings, gene_sets, method=method, min_size=min_size, max_size=max_size,
        permutations=permutations, seed=seed,
    )  # fmt: skip
    names = program_names(loadings.index, terms, fdr=fdr)
    genes = top_genes(loadings, n_top=n_genes)
    genes["name"] = genes["program"].map(names)
    best = best_terms(terms, n_top=n_terms, fdr=fdr)
    top_terms = best.groupby("program", sort=False)["gene_set"].agg("; ".join)
    views = {c: model.condition(c) for c in model.conditions}
    frames, diags, recoveries = [], [], {}
    for i, (c, view) in enumerate(views.items()):
        table = perturbation_programs(view, names=names)
        table.insert(0, "condition", c)
        table.insert(
            table.columns.get_loc("program") + 1, "block", table["program"].map(blocks["block"])
        )
        frames.append(table)
        diag = program_diagnostics(view, prior=prior if prior is not None else string)
        diags.append(diag if i == 0 else diag.iloc[model.W.shape[0] :])
        if string is not None:
            mine = terms[terms["program"].isin(view.factor_names)][TERM_COLUMNS]
            recoveries[c] = recovery_test(
                view, mine, gene_sets, string=string, n_shuffles=n_shuffles, seed=seed
            )
    perturbations = pd.concat(frames, ignore_index=True)
    diagnostics = pd.concat(diags).loc[blocks.index]
    diagnostics["mean_abs_effect"] = (
        perturbations.groupby("program")["effect"].apply(lambda s: s.abs().mean())
    ).reindex(diagnostics.index)
    diagnostics.insert(0, "name", names.reindex(diagnostics.index).to_numpy())
    diagnostics.insert(0, "block", blocks["block"].reindex(diagnostics.index).to_numpy())
    diagnostics.insert(0, "condition", blocks["condition"].reindex(diagnostics.index).to_numpy())
    diagnostics["top_terms"] = top_terms.reindex(diagnostics.index)
    settings: dict[str, Any] = {
        "method": method, "min_size": min_size, "max_size": max_size,
        "n_gene_sets_tested": int(terms["gene_set"].nunique()), "fdr": fdr,
        "permutations": permutations if method == "gsea" else None, "seed": seed,
        "loadings": "W scaled by the gene scaling and renormalized per program",
        "conditions": list(model.conditions), "condition_key": model.condition_key,
        "shared_programs": int(model.W.shape[0]), "condition_factors": model.condition_factors,
        "blocks": f"block 'shared': a program of every condition (its gene tables once, condition "
        f"'{ALL_CONDITIONS}'); block 'own': a condition's own program",
        "seconds": round(time.perf_counter() - start, 2),
    }  # fmt: skip
    if recoveries:
        settings["recovery"] = {
            c: {"fraction": r.fraction, "shuffled_fraction": r.shuffled_fraction,
                "n_terms": r.n_terms, "informative": r.informative}
            for c, r in recoveries.items()
        }  # fmt: skip
    return ConditionPrograms(
        genes=_tag(genes, blocks),
        terms=_tag(terms, blocks),
        perturbations=perturbations.reset_index(drop=True),
        diagnostics=diagnostics,
        names=names,
        recovery=None,
        settings=settings,
        conditions=list(model.conditions),
        recoveries=recoveries,
    )
