"""STRING readers and the channel-recombination rule."""

from __future__ import annotations

import gzip

import numpy as np
import pandas as pd
import pytest

import pertspectra.priors as pp


def _by_hand(**scores: float) -> int:
    """STRING's rule written out independently (channels combined as independent evidence)."""
    p = 0.041
    homology = max(0.0, (scores.pop("homology", 0) / 1000 - p) / (1 - p))
    keep = 1.0
    for name, s in scores.items():
        s1 = max(0.0, (s / 1000 - p) / (1 - p))
        if name.startswith(("cooccurence", "textmining")):
            s1 *= 1 - homology
        keep *= 1 - s1
    return int(((1 - keep) * (1 - p) + p) * 1000)  # STRING truncates with int()


@pytest.mark.parametrize(
    ("scores", "expected"),
    [
        ({"experiments": 500, "database": 900}, 947),  # 1-(1-.4786)(1-.8957) -> .9479
        ({"experiments": 0, "experiments_transferred": 300}, 300),  # one channel gives itself
        ({"cooccurence": 500, "homology": 800}, 136),  # homology correction: .4786*(1-.7914)
        ({"coexpression": 300, "coexpression_transferred": 200, "database": 30}, 416),
        ({"database": 20}, 41),  # below the prior: only the prior is left
    ],
)
def test_combined_score_hand_computed(scores, expected):
    cols = {k: np.array([v], dtype=float) for k, v in scores.items()}
    assert pp.combined_score(cols)[0] == expected
    assert _by_hand(**scores) == expected


def test_channel_selection_includes_transferred_part():
    cols = {
        "experiments": np.array([400.0]),
        "experiments_transferred": np.array([600.0]),
        "database": np.array([900.0]),
        "textmining": np.array([990.0]),
    }
    assert pp.combined_score(cols, "experiments")[0] == _by_hand(
        experiments=400, experiments_transferred=600
    )
    assert pp.combined_score(cols, ["experimental_transferred"])[0] == 600
    assert pp.combined_score(cols, "experiments,database")[0] == _by_hand(
        experiments=400, experiments_transferred=600, database=900
    )
    with pytest.raises(ValueError, match="homology"):
        pp.combined_score(cols, "homology")
    with pytest.raises(ValueError, match="unknown STRING channel"):
        pp.combined_score(cols, "telepathy")
    with pytest.raises(ValueError, match="not in the file"):
        pp.combined_score(cols, "fusion")


def test_fixture_combined_scores_follow_the_rule(string_files, detailed_cols):
    links, _ = string_files
    df = pd.read_csv(links, sep=" ")
    got = pp.combined_score({c: df[c].to_numpy(float) for c in detailed_cols})
    np.testing.assert_array_equal(got, df["combined_score"].to_numpy(float))


def _recount(rows, genes, threshold):
    """Plain-python oracle: unordered pairs of wanted genes, max score, self-pairs dropped."""
    best: dict[frozenset, float] = {}
    for a, b, s in rows:
        if a in genes and b in genes and a != b and s >= threshold:
            k = frozenset((a, b))
            best[k] = max(best.get(k, 0.0), s / 1000)
    return best


def _matrix_pairs(mat, names):
    coo = mat.tocoo()
    return {
        frozenset((names[i], names[j])): float(v)
        for i, j, v in zip(coo.row, coo.col, coo.data, strict=True)
    }


def test_read_protein_links_against_recount(string_files, string_symbol_rows):
    links, info = string_files
    genes = ["GENEA", "GENEB", "GENEC", "GENED", "GENEE", "GENEZ"]
    edges = pp.read_string(links, info=info, genes=genes)
    # rows: 2 (A-B) + 2 (A-B via isoform) + 2 (B-C) + 1 (B-B) + 2 (D-E); 699 and unknown protein dropped
    assert len(edges) == 9
    assert edges.attrs["pertspectra"]["version"] == "12.0"
    mat = pp.prior_matrix(edges, genes)
    want = _recount(string_symbol_rows, set(genes), 700)
    got = _matrix_pairs(mat, genes)
    assert got.keys() == want.keys()
    for k, v in want.items():
        assert got[k] == pytest.approx(v, abs=1e-6)
    assert got[frozenset(("GENEA", "GENEB"))] == pytest.approx(0.947, abs=1e-6)  # max over isoforms
    assert (mat != mat.T).nnz == 0
    assert mat.diagonal().max() == 0
    # the info file is found beside the links file
    assert len(pp.read_string(links, genes=genes)) == 9


def test_read_protein_links_channels_and_threshold(string_files):
    links, info = string_files
    edges = pp.read_string(links, info=info, min_score=0.4, channels="experiments,database")
    # experimental/database evidence only: A-B 947 (x2), B-B 950, D-E 720 (x2), A-unknown dropped
    assert sorted(edges["weight"].round(3).tolist()) == [0.72, 0.72, 0.947, 0.947, 0.95]
    edges = pp.read_string(links, info=info, min_score=0.0, channels=["coexpression"])
    assert sorted(set(edges["weight"].round(3))) == [0.041, 0.3, 0.699]
    with pytest.raises(ValueError, match="0-1 scale"):
        pp.read_string(links, info=info, min_score=700)


def test_read_full_format_with_homology(tmp_path):
    path = tmp_path / "9606.protein.links.full.v12.0.txt"
    header = "protein1 protein2 neighborhood neighborhood_transferred fusion cooccurence homology coexpression coexpression_transferred experiments experiments_transferred database database_transferred textmining textmining_transferred combined_score"
    row = "9606.P1 9606.P2 0 0 0 500 800 0 0 0 0 0 0 900 0 960"
    path.write_text(f"{header}\n{row}\n")
    info = tmp_path / "info.txt"
    info.write_text(
        "#string_protein_id\tpreferred_name\tprotein_size\tannotation\n9606.P1\tX\t1\ta\n9606.P2\tY\t1\tb\n"
    )
    e = pp.read_string(path, info=info, min_score=0.0, channels="cooccurence,textmining")
    want = _by_hand(cooccurence=500, textmining=900, homology=800)
    assert e["weight"].tolist() == [want / 1000]
    assert pp.read_string(path, info=info)["weight"].tolist() == [0.96]


def test_missing_info_is_a_clear_error(tmp_path, string_files):
    links, _ = string_files
    lone = tmp_path / "other" / links.name
    lone.parent.mkdir()
    lone.write_bytes(links.read_bytes())
    with pytest.raises(ValueError, match=r"protein\.info"):
        pp.read_string(lone)


def test_not_a_string_file(tmp_path):
    path = tmp_path / "edges.tsv"
    path.write_text("a\tb\n1\t2\n")
    with pytest.raises(ValueError, match="not a STRING file"):
        pp.read_string(path)


def test_symbol_table_and_api_format(tmp_path):
    sym = tmp_path / "table.tsv.gz"
    with gzip.open(sym, "wt") as fh:
        fh.write("entrez_a\tsymbol_a\tentrez_b\tsymbol_b\texperiments\tdatabase\tcombined_score\n")
        fh.write("1\tA\t2\tB\t500\t900\t947\n3\tC\t2\tB\t0\t0\t650\n")
    e = pp.read_string(sym)
    assert e.to_dict("list") == {"source": ["A"], "target": ["B"], "weight": [0.947]}
    api = tmp_path / "api.tsv"
    api.write_text(
        "stringId_A\tstringId_B\tpreferredName_A\tpreferredName_B\tncbiTaxonId\tscore\tnscore\tfscore\tpscore\tascore\tescore\tdscore\ttscore\n"
        "9606.P1\t9606.P2\tA\tB\t9606\t0.947\t0\t0\t0\t0\t0.5\t0.9\t0\n"
    )
    assert pp.read_string(api)["weight"].tolist() == [0.947]
    assert pp.read_string(api, channels="experiments,database")["weight"].tolist() == [0.947]


def test_shared_table_recombination_reproduces_combined_score(string_table):
    df = pd.read_csv(string_table, sep="\t")
    channels = [
        c
        for c in df.columns
        if c not in ("entrez_a", "symbol_a", "entrez_b", "symbol_b", "combined_score")
    ]
    got = pp.combined_score({c: df[c].to_numpy(float) for c in channels})
    diff = np.abs(got - df["combined_score"].to_numpy(float))
    assert (diff == 0).mean() > 0.995
    assert (diff <= 1).mean() > 0.9999
    # without the homology correction STRING's numbers are not reproduced as well
    no_h = pp.combined_score({c: df[c].to_numpy(float) for c in channels if c != "homology"})
    assert (np.abs(no_h - df["combined_score"].to_numpy(float)) <= 1).mean() < 0.98


def test_shared_table_prior_against_pandas_recount(string_table):
    path = string_table
    df = pd.read_csv(
        path,
        sep="\t",
        usecols=[
            "symbol_a",
            "symbol_b",
            "experiments",
            "experiments_transferred",
            "database",
            "database_transferred",
            "combined_score",
        ],
    )
    symbols = np.unique(df[["symbol_a", "symbol_b"]].to_numpy().ravel().astype(str))
    genes = list(np.random.default_rng(0).choice(symbols, 3000, replace=False))
    for kwargs, score in [
        ({}, df["combined_score"].to_numpy(float)),
        ({"channels": "experiments,database", "min_score": 0.4}, None),
    ]:
        mat = pp.prior_matrix(pp.read_string(path, genes=genes, **kwargs), genes)
        if score is None:  # independent recount of the validated score
            p = 0.041
            keep = np.ones(len(df))
            for c in ("experiments", "experiments_transferred", "database", "database_transferred"):
                keep *= 1 - np.clip((df[c] / 1000 - p) / (1 - p), 0, None)
            score = np.floor(((1 - keep) * (1 - p) + p) * 1000)
        thr = 1000 * kwargs.get("min_score", 0.7)
        sub = df.assign(score=score)
        sub = sub[sub["symbol_a"].isin(genes) & sub["symbol_b"].isin(genes) & (sub["score"] >= thr)]
        sub = sub[sub["symbol_a"] != sub["symbol_b"]]
        lo = np.minimum(sub["symbol_a"], sub["symbol_b"])
        hi = np.maximum(sub["symbol_a"], sub["symbol_b"])
        want = sub.assign(lo=lo, hi=hi).groupby(["lo", "hi"])["score"].max() / 1000
        assert mat.nnz == 2 * len(want)
        pos = {g: i for i, g in enumerate(genes)}
        vals = np.asarray(
            mat[[pos[a] for a, _ in want.index], [pos[b] for _, b in want.index]]
        ).ravel()
        np.testing.assert_allclose(vals, want.to_numpy(), atol=1e-6)
        assert (mat != mat.T).nnz == 0
        assert mat.diagonal().max() == 0
