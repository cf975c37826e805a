from __future__ import annotations

import json

import numpy as np
import pytest

from pertspectra.model import load_model


def test_save_load_roundtrip_identical_predictions(toy_model, tmp_path):
    path = toy_model.save(tmp_path / "model")
    assert sorted(p.name for p in path.iterdir()) == ["model.json", "model.safetensors"]
    meta = json.loads((path / "model.json").read_text())
    assert meta["design_columns"][-2:] == ["ctrl", "basal"]
    assert {"genes", "labels", "config", "training", "versions"} <= set(meta)
    loaded = load_model(path)
    labels = ["G0+G1", "G2", "ctrl", "G3+G5"]
    np.testing.assert_array_equal(
        loaded.predict(labels).to_numpy(), toy_model.predict(labels).to_numpy()
    )
    assert loaded.genes == toy_model.genes
    np.testing.assert_allclose(loaded.W.sum(axis=0), 1.0, rtol=1e-6)
    assert (loaded.P[-1] > 0).all()  # basal positive
    np.testing.assert_array_equal(loaded.P[-2], 0.0)  # effects: the ctrl row is zero
    np.testing.assert_array_equal(loaded.on_target, toy_model.on_target)
    assert loaded.config == toy_model.config
    np.testing.assert_allclose(loaded.B, loaded.B.T)


def test_unknown_perturbation_named(toy_model):
    with pytest.raises(KeyError, match="NOPE"):
        toy_model.predict(["G0+NOPE"])


def test_save_refuses_to_clobber(toy_model, tmp_path):
    toy_model.save(tmp_path / "m")
    with pytest.raises(FileExistsError, match="already holds a model"):
        toy_model.save(tmp_path / "m")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not an empty folder"):
        toy_model.save(tmp_path / "other")
    assert (tmp_path / "other" / "notes.txt").read_text() == "mine"
    toy_model.save(tmp_path / "m", overwrite=True)
    assert load_model(tmp_path / "m").genes == toy_model.genes


def test_load_validates_shapes_and_names(toy_model, tmp_path):
    from safetensors.numpy import load_file, save_file

    path = toy_model.save(tmp_path / "m")
    tensors = load_file(str(path / "model.safetensors"))
    save_file({**tensors, "W": tensors["W"][:, :-1].copy()}, str(path / "model.safetensors"))
    with pytest.raises(ValueError, match="'W' has shape"):
        load_model(path)
    save_file({k: v for k, v in tensors.items() if k != "B"}, str(path / "model.safetensors"))
    with pytest.raises(ValueError, match=r"lacks tensors \['B'\]"):
        load_model(path)
    with pytest.raises(FileNotFoundError, match="not a pertspectra model"):
        load_model(tmp_path)
