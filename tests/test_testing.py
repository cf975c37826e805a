"""ps.testing: the helpers other tests and benchmarks rely on."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import pertspectra as ps


def test_shared_data_dir_env(tmp_path, monkeypatch):
    (tmp_path / "screens").mkdir()
    (tmp_path / "screens" / "x.h5ad").write_text("")
    monkeypatch.setenv("PERTSPECTRA_SHARED_DATA", str(tmp_path))
    assert ps.testing.shared_data_dir() == tmp_path
    assert ps.testing.shared_data_dir(required="screens/x.h5ad") == tmp_path
    monkeypatch.setenv("PERTSPECTRA_SHARED_DATA", str(tmp_path / "nowhere"))
    monkeypatch.chdir(tmp_path)
    found = ps.testing.shared_data_dir(required="screens/definitely_absent.h5ad")
    assert found is None


def test_devices():
    devs = ps.testing.devices()
    assert devs[0] == "cpu"
    assert ("cuda" in devs) == torch.cuda.is_available()


def test_assert_allclose_up_to_sign():
    a = np.array([[1.0, -2.0], [3.0, -4.0]])
    b = np.array([[-1.0, -2.0], [-3.0, -4.0]])
    with pytest.raises(AssertionError):
        ps.testing.assert_allclose(a, b)
    ps.testing.assert_allclose(torch.as_tensor(a), b, up_to_sign=True)
    with pytest.raises(AssertionError):
        ps.testing.assert_allclose(a, b + 1, up_to_sign=True)


def test_assert_models_equal(toy_model, toy_stats):
    ps.testing.assert_models_equal(toy_model, toy_model)
    other = ps.train.fit(toy_stats, n_factors=6, max_epochs=5, progress=False, seed=9)
    with pytest.raises(AssertionError):
        ps.testing.assert_models_equal(toy_model, other)
