"""Scoring similarities against known gene pairs."""

from __future__ import annotations

import itertools
import logging

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import average_precision_score, precision_recall_curve

import pertspectra.similarity as sim


def _pairs(rows):
    return pd.DataFrame(rows, columns=["entity1", "entity2"])


def _square(values: dict[tuple[str, str], float], labels: list[str]) -> pd.DataFrame:
    s = pd.DataFrame(np.eye(len(labels)), index=labels, columns=labels)
    for (a, b), v in values.items():
        s.loc[a, b] = s.loc[b, a] = v
    return s


def _planted(n_per_group=15, n_features=30, seed=0):
    """Three planted groups of perturbations: group mean plus noise."""
    rng = np.random.default_rng(seed)
    groups = np.repeat([0, 1, 2], n_per_group)
    means = rng.normal(scale=2.0, size=(3, n_features))
    x = means[groups] + rng.normal(size=(groups.size, n_features))
    labels = [f"GENE{i:02d}" for i in range(groups.size)]
    truth = _pairs(
        [
            (labels[i], labels[j])
            for i, j in itertools.combinations(range(groups.size), 2)
            if groups[i] == groups[j]
        ]
    )
    return pd.DataFrame(x, index=labels), truth, groups


def test_average_precision_by_hand_and_sklearn():
    labels = ["A", "B", "C", "D"]
    s = _square(
        {
            ("A", "B"): 0.9,
            ("A", "C"): 0.8,
            ("A", "D"): 0.7,
            ("B", "C"): 0.6,
            ("B", "D"): 0.5,
            ("C", "D"): 0.4,
        },
        labels,
    )
    res = sim.score_pairs(s, _pairs([("A", "B"), ("D", "A")]), n_permutations=0)
    # ranking AB+, AC-, AD+, ...: AP = 1/2 * 1 + 1/2 * 2/3
    assert res["average_precision"] == pytest.approx(1 / 2 + 1 / 3, abs=1e-12)
    assert res["n_pairs"] == 6
    assert res["n_positive"] == 2
    assert res["prevalence"] == pytest.approx(2 / 6)
    # top 1: P=1, R=1/2 (F1 2/3); top 2: P=R=1/2; top 3: P=2/3, R=1 (F1 0.8)
    assert res["best_f1"] == pytest.approx(0.8)
    assert np.isnan(res["p_value"])


def test_average_precision_matches_sklearn_with_ties():
    rng = np.random.default_rng(1)
    n = 9
    labels = [f"L{i}" for i in range(n)]
    raw = rng.integers(0, 4, size=(n, n)) / 4.0  # many ties
    s = pd.DataFrame(np.triu(raw, 1) + np.triu(raw, 1).T + np.eye(n), index=labels, columns=labels)
    rows = [
        (labels[i], labels[j]) for i, j in itertools.combinations(range(n), 2) if rng.random() < 0.3
    ]
    res = sim.score_pairs(s, _pairs(rows), n_permutations=10)
    known = {frozenset(r) for r in rows}
    y, score = [], []
    for a, b in itertools.combinations(labels, 2):  # every unordered pair once, no diagonal
        y.append(frozenset((a, b)) in known)
        score.append(s.loc[a, b])
    assert res["n_pairs"] == n * (n - 1) // 2 == len(y)
    assert res["n_positive"] == sum(y) == len(rows)
    assert res["average_precision"] == pytest.approx(average_precision_score(y, score), abs=1e-12)
    p, r, _ = precision_recall_curve(y, score)
    f1 = np.where(p + r > 0, 2 * p * r / np.maximum(p + r, 1e-300), 0)
    assert res["best_f1"] == pytest.approx(f1.max(), abs=1e-12)


def test_permutation_p_value_matches_exact_enumeration():
    labels = ["A", "B", "C", "D", "E"]
    rng = np.random.default_rng(7)
    vals = rng.random((5, 5))
    s = pd.DataFrame(
        np.triu(vals, 1) + np.triu(vals, 1).T + np.eye(5), index=labels, columns=labels
    )
    pairs = _pairs([("A", "B"), ("C", "D"), ("B", "E")])
    res = sim.score_pairs(s, pairs, n_permutations=4000, seed=3)
    obs = res["average_precision"]
    # oracle: the fraction of all 120 relabellings scoring at least as well
    hits = 0
    for perm in itertools.permutations(range(5)):
        relabel = s.copy()
        relabel.index = relabel.columns = [labels[k] for k in perm]
        hits += (
            sim.score_pairs(relabel, pairs, n_permutations=0)["average_precision"] >= obs - 1e-12
        )
    exact = hits / 120
    assert res["p_value"] == pytest.approx((1 + 4000 * exact) / 4001, abs=0.025)
    assert 0 < exact < 1


def test_pairs_deduplicated():
    labels = ["A", "B", "C", "D"]
    s = _square(
        {
            ("A", "B"): 0.9,
            ("A", "C"): 0.1,
            ("A", "D"): 0.3,
            ("B", "C"): 0.2,
            ("B", "D"): 0.8,
            ("C", "D"): 0.7,
        },
        labels,
    )
    messy = _pairs(
        [("A", "B"), ("B", "A"), ("A", "B"), ("C", "C"), ("D", "C"), ("C", "D"), ("A", "Z")]
    )
    clean = _pairs([("A", "B"), ("C", "D")])
    got = sim.score_pairs(s, messy, n_permutations=0)
    want = sim.score_pairs(s, clean, n_permutations=0)
    assert got["n_positive"] == 2
    assert got == want
    assert sim.positive_pairs(labels, messy).to_dict("list") == {
        "label1": ["A", "C"],
        "label2": ["B", "D"],
    }
    # label -> gene mapping: guides named after their gene
    genes = {"A": "GA", "B": "GB"}
    mapped = sim.positive_pairs(labels, _pairs([("GB", "GA"), ("A", "B")]), genes=genes)
    assert len(mapped) == 1


def test_recall_tails_is_efaar_recall():
    rng = np.random.default_rng(5)
    n = 8
    labels = [f"L{i}" for i in range(n)]
    vals = rng.permutation(28) / 27.0  # 28 distinct pair similarities
    s = pd.DataFrame(np.eye(n), index=labels, columns=labels)
    pairs_all = list(itertools.combinations(labels, 2))
    for (a, b), v in zip(pairs_all, vals, strict=True):
        s.loc[a, b] = s.loc[b, a] = v
    lo = pairs_all[int(np.argmin(vals))]
    hi = pairs_all[int(np.argmax(vals))]
    mid = pairs_all[int(np.argsort(vals)[14])]
    res = sim.score_pairs(s, _pairs([lo, hi, mid]), n_permutations=0)
    # with 28 pairs only the lowest (1/28 <= 5%) and highest (27/28 >= 95%) are in the tails
    assert res["recall_tails"] == pytest.approx(2 / 3)
    res10 = sim.score_pairs(s, _pairs([lo, hi, mid]), n_permutations=0, tails=(0.1, 0.9))
    assert res10["recall_tails"] == pytest.approx(2 / 3)
    second = pairs_all[int(np.argsort(vals)[1])]  # rank 2/28 = 7.1%: in the 10% tail only
    assert sim.score_pairs(s, _pairs([second]), n_permutations=0)["recall_tails"] == 0.0
    assert (
        sim.score_pairs(s, _pairs([second]), n_permutations=0, tails=(0.1, 0.9))["recall_tails"]
        == 1.0
    )


def test_authors_score_by_hand():
    # 1-D embedding A=0, B=1, C=3: D = [[0,1,3],[1,0,2],[3,2,0]]
    emb = pd.DataFrame({"x": [0.0, 1.0, 3.0]}, index=["A", "B", "C"])
    # columns min-max scaled (max 3, 2, 3): 1 - scaled = [[1, 1/2, 0], [2/3, 1, 1/3], [0, 0, 1]]
    # truth: diagonal + A-C both ways = AA BB CC AC CA (5 of 9)
    # ranked: 1 (AA BB CC: P=1, R=3/5), 2/3 (BA-), 1/2 (AB-), 1/3 (BC-), 0 (AC+ CA+ CB-: P=5/9, R=1)
    # trapezoid: 3/5 * 1 + (1 - 3/5) * (1/2 + 5/9) / 2 = 73/90
    res = sim.score_pairs_authors(emb, _pairs([("C", "A")]))
    assert res["auprc_trapezoid"] == pytest.approx(73 / 90, abs=1e-12)
    assert res["best_f1"] == pytest.approx(0.75)  # 2 * 1 * 3/5 / (1 + 3/5)
    assert res["best_f1_threshold"] == pytest.approx(1.0)
    assert res["n_pairs"] == 9
    assert res["n_positive"] == 5
    assert res["prevalence"] == pytest.approx(5 / 9)
    # the symmetric score of the same truth: one unordered pair, ranked last of three
    sym = sim.score_pairs(
        sim.similarity_matrix(emb, metric="euclidean"), _pairs([("A", "C")]), n_permutations=0
    )
    assert sym["average_precision"] == pytest.approx(1 / 3)


def test_planted_groups_score_high_and_shuffled_near_prevalence():
    emb, truth, _ = _planted()
    s = sim.similarity_matrix(emb)
    res = sim.score_pairs(s, truth, n_permutations=1000, seed=0)
    assert res["n_pairs"] == 45 * 44 // 2
    assert res["n_positive"] == 3 * 15 * 14 // 2
    assert res["average_precision"] > 0.99
    assert res["p_value"] == pytest.approx(1 / 1001)
    rng = np.random.default_rng(11)
    names = list(emb.index)
    shuffled = dict(zip(names, rng.permutation(names), strict=True))
    fake = truth.replace(shuffled)
    null = sim.score_pairs(s, fake, n_permutations=200, seed=0)
    assert null["prevalence"] == res["prevalence"]
    assert abs(null["average_precision"] - null["prevalence"]) < 0.08
    assert null["p_value"] > 0.01


def test_benchmark_pairs_table():
    emb, truth, _ = _planted(n_per_group=6)
    noise = pd.DataFrame(np.random.default_rng(2).normal(size=emb.shape), index=emb.index)
    extra = pd.concat([truth, _pairs([("GENE00", "NOT_SCREENED"), ("X", "Y")])])
    few = truth.iloc[:3]
    table = sim.benchmark_pairs(
        {"planted": emb, "noise": noise},
        {"groups": extra, "few": few},
        n_permutations=50,
        min_positive=5,
    )
    assert list(table.columns) == [
        "pairs_file",
        "embedding",
        "metric",
        "score",
        "value",
        "prevalence",
        "n_positive",
        "p_value",
    ]
    assert len(table) == 2 * 2 * 3
    assert set(table["score"]) == {"average_precision", "best_f1", "recall_tails"}
    row = table.query("embedding == 'planted' and pairs_file == 'groups'").set_index("score")
    want = sim.score_pairs(sim.similarity_matrix(emb), truth, n_permutations=50)
    assert row.loc["average_precision", "value"] == pytest.approx(want["average_precision"])
    assert row.loc["best_f1", "p_value"] == pytest.approx(want["p_value_best_f1"])
    assert (row["n_positive"] == 3 * 15).all()  # the unscreened pairs are left out
    skipped = table[table["pairs_file"] == "few"]
    assert skipped["value"].isna().all()
    assert (skipped["n_positive"] == 3).all()
    assert (table["metric"] == "correlation").all()


def test_benchmark_pairs_warns_once_per_unscorable_file(caplog):
    emb, truth, _ = _planted(n_per_group=4)
    noise = pd.DataFrame(np.random.default_rng(2).normal(size=emb.shape), index=emb.index)
    elsewhere = _pairs([("A", "B"), ("C", "D")])  # none among the labels
    with caplog.at_level(logging.WARNING, logger="pertspectra.similarity._benchmark"):
        table = sim.benchmark_pairs(
            {"planted": emb, "noise": noise, "again": emb},
            {"groups": truth, "elsewhere": elsewhere},
            n_permutations=20,
        )
    warnings = [r.getMessage() for r in caplog.records]
    assert warnings == ["elsewhere: 0 positive of 66 pairs among the labels: nothing to score"]
    assert table.loc[table["pairs_file"] == "elsewhere", "value"].isna().all()
    assert table.loc[table["pairs_file"] == "groups", "value"].notna().all()
    with caplog.at_level(logging.WARNING, logger="pertspectra.similarity._benchmark"):
        caplog.clear()
        sim.score_pairs(sim.similarity_matrix(emb), elsewhere, n_permutations=0)
    assert caplog.records[0].getMessage() == "0 positive of 66 pairs: nothing to score"


def test_corum_pairs_among_labels(shared):
    path = shared("benchmark_pairs/CORUM.txt")
    pairs = sim.read_gene_pairs(path)
    raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    known = {frozenset(p) for p in zip(raw["entity1"], raw["entity2"], strict=True) if p[0] != p[1]}
    assert len(pairs) == len(known)
    genes = sorted(set(pairs["entity1"].iloc[:40]) | set(pairs["entity2"].iloc[:40]))[:60]
    labels = [*genes, "NOT_A_GENE"]
    found = sim.positive_pairs(labels, pairs)
    brute = sum(frozenset(p) in known for p in itertools.combinations(labels, 2))
    assert len(found) == brute > 0
    assert len(sim.read_gene_pairs(path, universe=labels)) == brute
    s = sim.similarity_matrix(
        pd.DataFrame(np.random.default_rng(0).normal(size=(len(labels), 5)), index=labels)
    )
    assert sim.score_pairs(s, pairs, n_permutations=0)["n_positive"] == brute


def test_precision_recall_curves_match_average_precision():
    emb, truth, _ = _planted(n_per_group=8)
    noise = pd.DataFrame(np.random.default_rng(4).normal(size=emb.shape), index=emb.index)
    curves = sim.precision_recall_curves(
        {"planted": emb, "noise": noise}, {"groups": truth}, max_points=50
    )
    assert list(curves.columns) == [
        "pairs_file", "embedding", "recall", "precision", "average_precision", "prevalence"
    ]  # fmt: skip
    for name, e in (("planted", emb), ("noise", noise)):
        block = curves[curves["embedding"] == name]
        assert len(block) <= 52
        want = sim.score_pairs(sim.similarity_matrix(e), truth, n_permutations=0)
        assert block["average_precision"].iloc[0] == pytest.approx(want["average_precision"])
        assert block["prevalence"].iloc[0] == pytest.approx(want["prevalence"])
        assert block["recall"].max() == 1.0
        assert block["recall"].min() == 0.0
    planted = curves[curves["embedding"] == "planted"]
    assert planted["precision"].mean() > curves[curves["embedding"] == "noise"]["precision"].mean()
