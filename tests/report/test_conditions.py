"""The report of a condition model's results: one section per condition (mcfaline23, 3 lines)."""

from __future__ import annotations

import re
import shutil
from dataclasses import replace
from pathlib import Path

import anndata as ad
import pandas as pd
import pytest
from typer.testing import CliRunner

import pertspectra as ps
from pertspectra.cli import app
from pertspectra.report._conditions import conditions_of, section_id

runner = CliRunner()
pytestmark = pytest.mark.filterwarnings("ignore:the fit did not converge")
CONDITIONS = ["A172", "T98G", "U87MG"]


def _sections(page: str) -> dict[str, str]:
    """Section id -> the section's HTML."""
    parts = re.split(r'(?=<section id=")', page)
    out = {}
    for part in parts[1:]:
        key = re.match(r'<section id="([^"]+)"', part).group(1)
        out[key] = part[: part.index("</section>")]
    return out


@pytest.fixture(scope="module")
def results(shared, tmp_path_factory) -> Path:
    """A results folder as ``run`` lays it out: model, programs and similarity of a condition fit."""
    tmp = tmp_path_factory.mktemp("report_conditions")
    adata = ad.read_h5ad(shared("combinatorial/perturbench_devel.h5ad"))
    adata = adata[adata.obs["dataset"] == "mcfaline23"].copy()
    adata.write_h5ad(tmp / "mcfaline.h5ad")
    out = tmp / "results"
    model = ps.train.fit_conditions(
        adata, perturbation_key="condition", condition_key="cell_type", n_factors=6,
        condition_factors=2, max_epochs=40, progress=False, seed=0,
    )  # fmt: skip
    model.save(out / ps.report.STAGES["fit"])
    gmt = shared("knowledge/go_bp_human_2022-07.gmt.gz")
    pairs = tmp / "pairs.csv"
    pairs.write_text("entity1,entity2\nMAP2K3,MAP2K6\nMAP4K3,MAP4K5\nMAPK1,MAP2K3\n")
    model_dir = str(out / ps.report.STAGES["fit"])
    res = runner.invoke(
        app,
        ["programs", model_dir, "--gene-sets", str(gmt), "--out", str(out / "programs")],
    )
    assert res.exit_code == 0, res.output
    res = runner.invoke(
        app,
        [
            "similarity",
            model_dir,
            "--data",
            str(tmp / "mcfaline.h5ad"),
            "--perturbation-key",
            "condition",
            "--pairs",
            str(pairs),
            "--gene-sets",
            str(gmt),
            "--permutations",
            "20",
            "--out",
            str(out / "similarity"),
        ],
    )
    assert res.exit_code == 0, res.output
    return out


@pytest.fixture(scope="module")
def page(results) -> str:
    res = runner.invoke(app, ["report", str(results)])
    assert res.exit_code == 0, res.output
    return (results / ps.report.REPORT).read_text()


def test_one_section_per_condition(page):
    sections = _sections(page)
    ids = [k for k in sections if k.startswith("condition-")]
    assert ids == [f"condition-{c}" for c in CONDITIONS]
    for c in CONDITIONS:
        assert page.count(f'<section id="condition-{c}"') == 1
        assert f"<h2>Condition {c}</h2>" in sections[f"condition-{c}"]
        assert f'href="#condition-{c}"' in page  # in the navigation bar
    # the single-condition sections are replaced by the per-condition ones
    for plain in ("perturbations", "similarity", "clusters"):
        assert plain not in sections
    assert {"data", "fit", "programs", "agreement", "manifest"} <= set(sections)


def test_each_condition_section_shows_its_own_programs_and_labels(page):
    sections = _sections(page)
    for c in CONDITIONS:
        text = sections[f"condition-{c}"]
        assert f"{c}_0" in text
        assert "shared_0" in text
        for other in set(CONDITIONS) - {c}:
            assert f"{other}_0" not in text
        assert "Each perturbation&#39;s three strongest programs" in text
        assert "Most similar pairs" in text
        assert "Similarity of perturbations" in text
        assert 'class="error"' not in text  # every figure drawn
    a172 = sections["condition-A172"]
    facts = a172[: a172.index("</dl>")]
    assert "<dd>PLK4 (46)</dd>" in facts  # not fitted in A172 (46 cells), and said so
    assert "PLK4" not in a172[len(facts) :]  # no table or figure invents it
    assert "PLK4" in sections["condition-T98G"]
    # the overview lists every program with its condition and block
    overview = sections["programs"]
    assert "<th>block</th>" in overview
    assert all(f"{c}_1" in overview for c in CONDITIONS)
    verdict = sections["verdict"]
    assert all(f"{c}: " in verdict for c in CONDITIONS)
    assert "Across conditions" in verdict
    assert "Condition A172 lacks 1 label(s)" in sections["warnings"]


def test_collect_reads_the_stacked_tables(results):
    res = ps.report.collect(results)
    assert conditions_of(res) == CONDITIONS
    sim = res.similarity["similarity"]
    assert sim.index.names == ["condition", "label"]
    assert res.similarity["clusters"].index.names == ["condition", "label"]
    assert res.similarity["agreement"] is not None


def test_sections_without_the_model_folder(results, tmp_path):
    """The per-condition tables alone (no model folder) still give a section per condition."""
    folder = tmp_path / "r"
    for stage in ("programs", "similarity"):
        shutil.copytree(results / stage, folder / stage)
    path = ps.report.build_report(folder)
    sections = _sections(path.read_text())
    assert [k for k in sections if k.startswith("condition-")] == [
        f"condition-{c}" for c in CONDITIONS
    ]


def test_plain_report_keeps_its_sections(toy_model, tmp_path):
    toy_model.save(tmp_path / "model")
    gmt = tmp_path / "sets.gmt"
    genes = toy_model.genes
    gmt.write_text(
        "\n".join(f"set{k}\tx\t" + "\t".join(genes[k * 10 : k * 10 + 12]) for k in range(5)) + "\n"
    )
    res = runner.invoke(
        app,
        [
            "programs",
            str(tmp_path / "model"),
            "--gene-sets",
            str(gmt),
            "--min-size",
            "5",
            "--out",
            str(tmp_path / "programs"),
        ],
    )
    assert res.exit_code == 0, res.output
    sections = _sections(ps.report.build_report(tmp_path).read_text())
    assert {"programs", "perturbations"} <= set(sections)
    assert not any(k.startswith("condition-") for k in sections)
    assert conditions_of(ps.report.collect(tmp_path)) is None


def test_section_ids_are_safe_and_unique():
    taken: set[str] = set()
    assert section_id("A172", taken) == "condition-A172"
    assert section_id("IFN gamma / 24h", taken) == "condition-IFN-gamma-24h"
    assert section_id("IFN gamma + 24h", taken) == "condition-IFN-gamma-24h-2"
    assert section_id("<b>", taken) == "condition-b"


def _condition_card() -> ps.evaluate.Scorecard:
    """A scorecard per condition: the model wins in A172 and T98G, loses in U87MG."""
    rows = []
    for c, ours in (("A172", 0.8), ("T98G", 0.7), ("U87MG", 0.2)):
        for i in range(3):
            for method, r in (("pertspectra", ours), ("mean", 0.5), ("ceiling", 0.9)):
                rows.append(("cells", c, 0, f"L{i}", method, "pearson_delta", r + 0.01 * i))
    metrics = pd.DataFrame(rows, columns=ps.evaluate._summary.METRIC_COLUMNS)
    return ps.evaluate.Scorecard(
        metrics, ps.evaluate.summarize(metrics), pd.DataFrame(columns=["fold", "cell", "label", "role"]),
        settings={"fits": {"pertspectra": {}}, "protocol": "cells"},
    )  # fmt: skip


def test_scorecard_per_condition(results, tmp_path):
    folder = tmp_path / "r"
    shutil.copytree(results, folder, ignore=shutil.ignore_patterns(ps.report.REPORT))
    _condition_card().write(folder / ps.report.STAGES["evaluate"])
    sections = _sections(ps.report.build_report(folder).read_text())
    overview = sections["scorecard"]
    assert "Mean per condition and method" in overview
    assert "<th>condition</th>" in overview
    verdict = sections["verdict"]
    assert "A172: On held-out cells" in verdict
    assert "Pearson-delta 0.810, above the best baseline (mean: 0.510)" in verdict
    assert "U87MG: On held-out cells" in verdict
    assert "Pearson-delta 0.210, below the best baseline" in verdict
    for c in CONDITIONS:
        text = sections[f"condition-{c}"]
        assert "Mean per method (headline metrics)" in text
        assert "pearson_delta per method (cells)" in text
    assert "<td>0.81</td>" in sections["condition-A172"]
    assert "<td>0.81</td>" not in sections["condition-U87MG"]


def test_uninformative_recovery_is_named_per_condition():
    rec = {"A172": {"informative": False, "n_terms": 40}, "T98G": {"informative": True}}
    res = ps.report.Results(path=Path("."), programs={"settings": {"recovery": rec}})
    lines = ps.report.warnings_of(res)
    assert len(lines) == 1
    assert lines[0].startswith("The recovery test is uninformative in A172 here: 40 GO terms")


def test_fit_warnings_named_by_condition_once(results, monkeypatch):
    """A sentence of some conditions names them; one of every condition stands alone, once."""
    model = ps.model.ConditionModel.load(results / ps.report.STAGES["fit"])
    texts = {
        "A172": ["Only A172 warns.", "Every line warns."],
        "T98G": ["Two lines warn.", "Every line warns."],
        "U87MG": ["Every line warns.", "Two lines warn."],
    }

    def fake(view):
        own = [n for n in view.factor_names if not n.startswith("shared_")]
        return texts[own[0].rsplit("_", 1)[0]]

    monkeypatch.setattr("pertspectra.enrich._conditions.fit_warnings", fake)
    monkeypatch.setattr("pertspectra.report._verdict.fit_warnings", fake)  # one-condition views
    assert ps.enrich.condition_fit_warnings(model) == [
        "in A172: Only A172 warns.",
        "Every line warns.",
        "in T98G, U87MG: Two lines warn.",
    ]
    lines = ps.report.warnings_of(ps.report.Results(path=results, model=model))
    assert lines[:3] == [
        "In A172: Only A172 warns.",
        "Every line warns.",
        "In T98G, U87MG: Two lines warn.",
    ]
    assert sum("Two lines warn." in line for line in lines) == 1
    assert "Condition A172 lacks 1 label(s)" in lines[3]


def test_data_section_per_condition(page):
    data = _sections(page)["data"]
    facts = data[: data.index("</dl>")]
    assert "<dt>condition key</dt>" in facts
    assert "<dd>cell_type</dd>" in facts
    assert "<dd>A172, T98G, U87MG</dd>" in facts
    assert "<dd>none in every condition; in A172: PLK4 (46)</dd>" in facts
    assert "Cells per label in each condition" in data
    assert "A172:ctrl" not in data  # no (condition, label) group names
    table = data[data.index("Cells per label in each condition") :]
    assert all(f"<th>{c}</th>" in table for c in CONDITIONS)


def _sharing_card() -> ps.evaluate.Scorecard:
    """A scorecard with the three fits: sharing helps in A172; in T98G it ties with the pooled
    fit and loses to T98G alone."""
    rows = []
    for c, pooled, separate in (("A172", 0.2, 0.5), ("T98G", 0.6, 0.9)):
        for i in range(8):
            jitter = 0.01 * ((i * 7) % 5 - 2)
            for method, r in (
                ("pertspectra", 0.6),
                ("pertspectra_pooled", pooled + jitter),
                ("pertspectra_separate", separate + jitter),
                ("mean", 0.4),
            ):
                rows.append(("cells", c, 0, f"L{i}", method, "pearson_delta", r + 0.01 * i))
    metrics = pd.DataFrame(rows, columns=ps.evaluate._summary.METRIC_COLUMNS)
    summary = pd.concat(
        [ps.evaluate.summarize(metrics), ps.evaluate._condition_summary.versus_fits(metrics)],
        ignore_index=True,
    )
    return ps.evaluate.Scorecard(
        metrics, summary, pd.DataFrame(columns=["fold", "cell", "label", "role"]),
        settings={"protocol": "cells"},
    )  # fmt: skip


def test_verdict_says_whether_sharing_helps(results):
    from pertspectra.report._conditions import condition_verdict

    res = ps.report.collect(results)
    res = replace(res, scorecard=_sharing_card())
    lines = condition_verdict(res, CONDITIONS)
    a172 = [line for line in lines if line.startswith("In A172, ")]
    assert len(a172) == 1
    assert re.fullmatch(
        r"In A172, by Pearson-delta per label, the shared-program model beats a fit ignoring "
        r"the conditions on 100% of labels \(p=0\.0\d+: a clear gain\) and a fit of A172 alone "
        r"on 100% \(p=0\.0\d+: a clear gain\)\.",
        a172[0],
    ), a172[0]
    t98g = [line for line in lines if line.startswith("In T98G, ")]
    assert len(t98g) == 1
    assert re.search(
        r"ignoring the conditions on 50% of labels \(p=[\d.]+: no clear gain\)", t98g[0]
    ), t98g[0]
    assert re.search(r"a fit of T98G alone on 0% \(p=0\.0\d+: a clear loss\)", t98g[0]), t98g[0]
    assert not any(line.startswith("In U87MG") for line in lines)  # no scores there
    # the programs' explanation is given once, with the scorecard's lines before it
    head = [line for line in lines if line.startswith("In each condition, the perturbations")]
    assert len(head) == 1
    assert lines.index(head[0]) > lines.index(a172[0])
    # without the fit-vs-fit rows nothing is said about sharing
    res = replace(res, scorecard=_condition_card())
    lines = condition_verdict(res, CONDITIONS)
    assert not any(" the shared-program model " in line for line in lines)
    assert sum(line.startswith("In each condition, the perturbations") for line in lines) == 1
