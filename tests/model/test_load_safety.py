"""Safe loading of model folders: schema, versions, sizes, links, fuzzing; data of other genes."""

from __future__ import annotations

import hashlib
import json
import random
import shutil
import struct
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from pertspectra.cli import app
from pertspectra.model import FittedModel, load_model
from pertspectra.model import _schema as schema

runner = CliRunner()
META, TENSORS = "model.json", "model.safetensors"
WRONG_VALUES = (None, [], ["x", 1], 0, 1.5, True, "x", "", {"a": {"b": 1}}, {})
#: edits of WRONG_VALUES that are valid (a model with other settings, training or versions)
VALID_EDITS = {
    (key, json.dumps(value))
    for key, value in [
        ("separator", "x"), ("controls", []), ("on_target_genes", {}), ("training", {}),
        ("training", {"a": {"b": 1}}), ("versions", {}), ("config.lam", 1.5),
        ("config.delta", 0), ("config.delta", 1.5), ("config.kappa", None),
        ("config.graph", True), ("config.weight_decay", None), ("config.weight_decay", 0),
        ("config.weight_decay", 1.5), ("config.floor", 1.5), ("config.on_target", None),
        ("config.on_target", True),
    ]
}  # fmt: skip


@pytest.fixture(scope="module")
def saved(toy_model, tmp_path_factory) -> Path:
    """A saved toy model (never modified: tests copy it)."""
    return toy_model.save(tmp_path_factory.mktemp("saved") / "m")


@pytest.fixture
def folder(saved, tmp_path) -> Path:
    """A fresh copy of the saved model that a test may damage."""
    return Path(shutil.copytree(saved, tmp_path / "m"))


def _digest(path: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(path.iterdir())}


def _assert_equal(a: FittedModel, b: FittedModel) -> None:
    for name in ("P", "W", "B", "kappa", "gene_scale", "on_target"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert a.genes == b.genes
    assert a.design.to_dict() == b.design.to_dict()
    assert a.config == b.config
    assert a.on_target_genes == b.on_target_genes
    assert a.training == b.training


def _clean(path: Path) -> FittedModel | None:
    """Load ``path``: a model, or ``None`` after one clean one-line error naming a file."""
    try:
        model = load_model(path)
    except (ValueError, FileNotFoundError) as err:
        text = str(err)
        assert "\n" not in text, text
        assert "\r" not in text, text
        assert META in text or TENSORS in text or str(path) in text, text
        return None
    model.summary()  # what `pertspectra info` prints works on anything that loads
    return model


def _meta(path: Path) -> dict:
    return json.loads((path / META).read_text())


def _write_meta(path: Path, meta: dict) -> None:
    (path / META).write_text(json.dumps(meta))


# --------------------------------------------------------------------------- schema
def test_roundtrip_is_equal(toy_model, saved):
    _assert_equal(load_model(saved), toy_model)


@pytest.mark.parametrize(
    ("version", "hint"),
    [(2, "upgrade pertspectra"), (99, "upgrade pertspectra"), ("1", "not written by"),
     (True, "not written by"), (None, "not written by"), (0, "not written by")],
)  # fmt: skip
def test_unsupported_format_version(folder, version, hint):
    meta = _meta(folder)
    meta["format_version"] = version
    _write_meta(folder, meta)
    with pytest.raises(
        ValueError, match=r"model format version .* is not supported by pertspectra"
    ) as err:
        load_model(folder)
    assert "(supports 1)" in str(err.value)
    assert hint in str(err.value)
    assert str(folder / META) in str(err.value)


def test_missing_format_version_is_refused(folder):
    meta = _meta(folder)
    del meta["format_version"]
    _write_meta(folder, meta)
    with pytest.raises(ValueError, match=r"model format version \(missing\) is not supported"):
        load_model(folder)


def test_unknown_keys_are_refused_by_name(folder):
    meta = _meta(folder)
    meta["config"]["learning_rate_of_doom"] = 1
    _write_meta(folder, meta)
    with pytest.raises(ValueError, match=r"unknown setting.*learning_rate_of_doom"):
        load_model(folder)
    meta = _meta(folder)
    del meta["config"]["learning_rate_of_doom"]
    meta["extra"] = 1
    _write_meta(folder, meta)
    with pytest.raises(ValueError, match=r"unknown key.*extra"):
        load_model(folder)


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda m: m.update(genes=[*m["genes"][:-1], m["genes"][0]]), "names 'gene0' more than once"),
        (lambda m: m.update(genes=[*m["genes"][:-1], " "]), "not non-empty strings"),
        (lambda m: m["labels"].update(G0=["G0", "nope"]), "must name design columns"),
        (lambda m: m["on_target_genes"].update(G0="nope"), "must map a design column to a gene"),
        (lambda m: m["config"].update(rho=2.0), "rho must lie in"),
        (lambda m: m["config"].update(n_factors=5), "'P' has shape"),
        (lambda m: m["config"].update(on_target=False), "unknown tensor.*on_target"),
        (lambda m: m["training"].update(seconds="fast"), r"training\['seconds'\] must be a number"),
        (lambda m: m.update(encoding="cells"), "'encoding' must be"),
    ],
)  # fmt: skip
def test_hand_edits_are_refused(folder, edit, match):
    meta = _meta(folder)
    edit(meta)
    _write_meta(folder, meta)
    with pytest.raises(ValueError, match=match):
        load_model(folder)


def test_every_key_of_the_wrong_type_or_removed(saved, tmp_path):
    meta = _meta(saved)
    cases = [(k, v) for k in meta for v in WRONG_VALUES]
    cases += [(f"config.{k}", v) for k in meta["config"] for v in WRONG_VALUES]
    cases += [(k, "<removed>") for k in meta] + [
        (f"config.{k}", "<removed>") for k in meta["config"]
    ]
    path = Path(shutil.copytree(saved, tmp_path / "m"))
    loaded = set()
    for key, value in cases:
        edited = json.loads(json.dumps(meta))
        target, name = (edited["config"], key[7:]) if key.startswith("config.") else (edited, key)
        if value == "<removed>":
            del target[name]
        else:
            target[name] = value
        _write_meta(path, edited)
        if _clean(path) is not None:
            loaded.add((key, json.dumps(value)))
    # a wrong type never loads: only values that are valid settings do
    assert loaded == VALID_EDITS, loaded ^ VALID_EDITS


# --------------------------------------------------------------------------- files
def test_unknown_tensor_and_wrong_dtype_are_refused(folder):
    from safetensors.numpy import load_file, save_file

    tensors = load_file(str(folder / TENSORS))
    save_file({**tensors, "payload": np.zeros(3)}, str(folder / TENSORS))
    with pytest.raises(ValueError, match=r"unknown tensor\(s\) \['payload'\]"):
        load_model(folder)
    save_file({**tensors, "kappa": np.array([1], dtype=np.int64)}, str(folder / TENSORS))
    with pytest.raises(ValueError, match="'kappa' has dtype 'I64'"):
        load_model(folder)
    save_file({**tensors, "W": np.full_like(tensors["W"], np.nan)}, str(folder / TENSORS))
    with pytest.raises(ValueError, match="'W' holds non-finite values"):
        load_model(folder)
    save_file({k: v.astype(np.float32) for k, v in tensors.items()}, str(folder / TENSORS))
    assert load_model(folder).W.dtype == np.float64


def test_links_out_of_the_folder_are_refused(folder, tmp_path):
    outside = tmp_path / "elsewhere.json"
    shutil.move(folder / META, outside)
    (folder / META).symlink_to(outside)
    with pytest.raises(ValueError, match="outside the model folder"):
        load_model(folder)
    (folder / META).unlink()
    (folder / "real.json").write_bytes(outside.read_bytes())
    (folder / META).symlink_to("real.json")  # a link inside the folder is fine
    assert load_model(folder).genes
    (folder / META).unlink()
    (folder / META).symlink_to(tmp_path / "missing.json")
    with pytest.raises(FileNotFoundError, match="is missing"):
        load_model(folder)
    (folder / META).unlink()
    (folder / META).mkdir()
    with pytest.raises(ValueError, match="not a regular file"):
        load_model(folder)
    with pytest.raises(FileNotFoundError, match="not found"):
        load_model(tmp_path / "nowhere")


def test_oversized_files_are_refused_before_reading(folder, monkeypatch):
    with open(folder / META, "r+b") as fh:  # sparse: no 64 MiB written
        fh.truncate(schema.MAX_METADATA_BYTES + 1)
    with pytest.raises(ValueError, match=r"model.json is 67,108,865 bytes, more than"):
        load_model(folder)
    # never read: json.loads is not reached
    monkeypatch.setattr(json, "loads", lambda *a, **k: pytest.fail("read an oversized file"))
    with pytest.raises(ValueError, match="more than"):
        load_model(folder)


def test_reading_allocates_the_file_not_the_limit(saved, monkeypatch):
    monkeypatch.setattr(schema, "MAX_METADATA_BYTES", 2**60)
    monkeypatch.setattr(schema, "MAX_HEADER_BYTES", 2**60)
    assert load_model(saved).genes


def test_padded_tensors_and_huge_header_lengths_are_refused(folder):
    data = (folder / TENSORS).read_bytes()
    with open(folder / TENSORS, "r+b") as fh:
        fh.truncate(schema.tensor_limit({"x": (10**6,)}))  # far beyond what the shapes allow
    with pytest.raises(ValueError, match=r"bytes the shapes in model\.json allow"):
        load_model(folder)
    for n in (2**63, 2**40, len(data)):
        (folder / TENSORS).write_bytes(struct.pack("<Q", n) + data[8:])
        with pytest.raises(ValueError, match=f"declares a header of {n:,} bytes"):
            load_model(folder)


# --------------------------------------------------------------------------- fuzzing
def test_truncation_anywhere(saved, tmp_path):
    path = Path(shutil.copytree(saved, tmp_path / "m"))
    for name in (TENSORS, META):
        data = (saved / name).read_bytes()
        (n,) = struct.unpack("<Q", data[:8])
        cuts = set(range(min(len(data), 16 + n))) if name == TENSORS else set()
        cuts |= set(range(0, len(data), max(1, len(data) // 300)))
        for cut in sorted(cuts):
            (path / name).write_bytes(data[:cut])
            assert _clean(path) is None, (name, cut)
        (path / name).write_bytes(data)
    _assert_equal(load_model(path), load_model(saved))


def test_bit_flips(saved, tmp_path):
    path = Path(shutil.copytree(saved, tmp_path / "m"))
    rng = random.Random(0)
    for name in (TENSORS, META):
        data = (saved / name).read_bytes()
        (n,) = struct.unpack("<Q", data[:8])
        positions = list(range(min(len(data), 8 + n))) if name == TENSORS else []
        positions += [rng.randrange(len(data)) for _ in range(300)]
        for pos in positions:
            flipped = bytearray(data)
            flipped[pos] ^= 1 << rng.randrange(8)
            (path / name).write_bytes(bytes(flipped))
            _clean(path)
        (path / name).write_bytes(data)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    which=st.sampled_from([TENSORS, META]),
    junk=st.binary(max_size=600),
    keep=st.integers(min_value=0, max_value=5000),
)
def test_random_bytes_hypothesis(saved, tmp_path, which, junk, keep):
    path = tmp_path / "h"
    if path.exists():
        shutil.rmtree(path)
    shutil.copytree(saved, path)
    data = (saved / which).read_bytes()
    (path / which).write_bytes(data[:keep] + junk)
    model = _clean(path)
    if model is not None and not junk:
        _assert_equal(model, load_model(saved))


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    value=st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
        lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=3), c, max_size=3),
        max_leaves=6,
    ),
    key=st.sampled_from(
        ["format_version", "genes", "design_columns", "labels", "encoding", "separator",
         "controls", "on_target_genes", "config", "training", "versions", "config.n_factors",
         "config.lam", "config.kappa", "config.parametrization", "training.epochs"]
    ),
)  # fmt: skip
def test_json_of_wrong_types_hypothesis(saved, tmp_path, value, key):
    path = tmp_path / "j"
    if not path.exists():
        shutil.copytree(saved, path)
    meta = _meta(saved)
    target = meta
    *parents, name = key.split(".")
    for p in parents:
        target = target[p]
    target[name] = value
    (path / META).write_text(json.dumps(meta))
    _clean(path)


def test_deeply_nested_json_is_a_clean_error(folder):
    (folder / META).write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ValueError, match="not valid JSON"):
        load_model(folder)


# --------------------------------------------------------------------------- CLI
@pytest.mark.parametrize("damage", ["truncate", "flip_header", "version", "link", "type"])
def test_cli_info_and_predict_on_damaged_folders(folder, tmp_path, damage):
    if damage == "truncate":
        (folder / TENSORS).write_bytes((folder / TENSORS).read_bytes()[:50])
    elif damage == "flip_header":
        data = bytearray((folder / TENSORS).read_bytes())
        data[7] ^= 0x40
        (folder / TENSORS).write_bytes(bytes(data))
    elif damage == "version":
        meta = _meta(folder)
        meta["format_version"] = 7
        _write_meta(folder, meta)
    elif damage == "link":
        (tmp_path / "x.json").write_bytes((folder / META).read_bytes())
        (folder / META).unlink()
        (folder / META).symlink_to(tmp_path / "x.json")
    else:
        meta = _meta(folder)
        meta["genes"] = {"gene0": 1}
        _write_meta(folder, meta)
    before = _digest(folder)
    out = tmp_path / "p.csv"
    for cmd in (["info", str(folder)], ["predict", str(folder), "G1", "G0+G1", "-o", str(out)]):
        res = runner.invoke(app, cmd)
        assert res.exit_code == 1, res.output
        lines = res.output.strip().splitlines()
        assert len(lines) == 1, res.output
        assert lines[0].startswith("error: "), res.output
        assert "Traceback" not in res.output
        assert str(folder) in lines[0]
    assert not out.exists()
    assert _digest(folder) == before


# ------------------------------------------------------------------ data of other genes
@pytest.fixture(scope="module")
def other_genes_h5ad(toy_adata, tmp_path_factory) -> Path:
    adata = toy_adata.copy()
    adata.var_names = [f"other{i}" if i < 3 else g for i, g in enumerate(adata.var_names)]
    path = tmp_path_factory.mktemp("other") / "other.h5ad"
    adata.write_h5ad(path)
    return path


def test_check_genes(toy_model, caplog):
    toy_model.check_genes([*toy_model.genes, "extra"], source="data")
    assert "1 genes the model was not fitted on" in caplog.text
    with pytest.raises(
        ValueError, match=r"lacks 2 of the model's 60 genes \(e.g. \['gene0', 'gene1'\]\)"
    ):
        toy_model.check_genes(toy_model.genes[2:], source="data")


def test_similarity_data_of_other_genes(saved, other_genes_h5ad, tmp_path):
    before = _digest(saved), _digest(other_genes_h5ad.parent)
    res = runner.invoke(
        app,
        ["similarity", str(saved), "--data", str(other_genes_h5ad), "--perturbation-key",
         "perturbation", "--out", str(tmp_path / "sim")],
    )  # fmt: skip
    assert res.exit_code == 1, res.output
    assert res.output.startswith("error: --data ")
    assert "lacks 3 of the model's 60 genes (e.g. ['gene0', 'gene1', 'gene2'])" in res.output
    assert "has 3 genes the model lacks" in res.output
    assert "Traceback" not in res.output
    assert (_digest(saved), _digest(other_genes_h5ad.parent)) == before
    assert not (tmp_path / "sim").exists()


def test_programs_data_of_other_genes(saved, other_genes_h5ad, tmp_path):
    gmt = tmp_path / "sets.gmt"
    gmt.write_text("SET1\tna\t" + "\t".join(f"gene{i}" for i in range(12)) + "\n")
    before = _digest(saved), _digest(other_genes_h5ad.parent)
    res = runner.invoke(
        app,
        ["programs", str(saved), "--gene-sets", str(gmt), "--data", str(other_genes_h5ad),
         "--out", str(tmp_path / "prog")],
    )  # fmt: skip
    assert res.exit_code == 1, res.output
    assert "lacks 3 of the model's 60 genes" in res.output
    assert "Traceback" not in res.output
    assert (_digest(saved), _digest(other_genes_h5ad.parent)) == before


def test_evaluate_predictions_of_other_genes(toy_model, toy_adata, tmp_path):
    data = tmp_path / "toy.h5ad"
    toy_adata.write_h5ad(data)
    pred = toy_model.predict(["G0+G1", "G2"]).drop(columns=["gene5", "gene7"])
    pred.to_csv(tmp_path / "other.csv")
    before = _digest(tmp_path)
    res = runner.invoke(
        app,
        ["evaluate", str(data), "--perturbation-key", "perturbation", "--predictions",
         f"other={tmp_path / 'other.csv'}", "--out", str(tmp_path / "ev")],
    )  # fmt: skip
    assert res.exit_code == 1, res.output
    assert "predictions 'other' are for other genes than the data" in res.output
    assert "lack 2 of its 60 genes (e.g. ['gene5', 'gene7'])" in res.output
    assert "Traceback" not in res.output
    assert _digest(tmp_path) == before
    assert not (tmp_path / "ev").exists()


def test_embedding_data_of_other_genes(toy_model, toy_stats):
    from pertspectra.similarity import embedding

    other = toy_stats[:, 1:].copy()
    with pytest.raises(ValueError, match=r"data has other genes than the model: it lacks 1"):
        embedding(toy_model, kind="data_change", data=other)
    assert isinstance(embedding(toy_model, kind="data_change", data=toy_stats), pd.DataFrame)
