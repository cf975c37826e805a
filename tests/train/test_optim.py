"""The loop's optimizer: AdamW, fused where torch has the kernel, the plain one otherwise."""

from __future__ import annotations

import torch

from pertspectra.train import _optim


def _step(opt, x):
    opt.zero_grad()
    ((x - 3.0) ** 2).sum().backward()
    opt.step()


def test_fused_where_torch_has_it_and_the_same_update():
    x = torch.nn.Parameter(torch.zeros(4, dtype=torch.float64))
    y = torch.nn.Parameter(torch.zeros(4, dtype=torch.float64))
    fused = _optim.adamw([x], lr=0.1, betas=(0.9, 0.95))
    plain = torch.optim.AdamW([y], lr=0.1, betas=(0.9, 0.95), weight_decay=0.001)
    major, minor = (int(v) for v in torch.__version__.split(".")[:2])
    assert fused.defaults.get("fused") is ((major, minor) >= (2, 4))  # the CPU kernel: 2.4 on
    for _ in range(20):
        _step(fused, x)
        _step(plain, y)
    assert torch.allclose(x, y, rtol=1e-12, atol=1e-12)
    assert not torch.equal(x, torch.zeros(4, dtype=torch.float64))


def test_plain_when_torch_refuses_the_fused_kernel(monkeypatch):
    real = torch.optim.AdamW

    def no_fused(params, **kw):
        if kw.get("fused"):
            msg = "`fused=True` requires all the params to be on a supported device"
            raise RuntimeError(msg)
        return real(params, **kw)

    monkeypatch.setattr(torch.optim, "AdamW", no_fused)
    x = torch.nn.Parameter(torch.zeros(2))
    opt = _optim.adamw([x], lr=0.1)
    assert not opt.defaults.get("fused")
    _step(opt, x)
    assert float(x[0]) > 0
