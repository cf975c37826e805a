"""The blocked graph likelihood equals the naive dense formula, in value and gradients."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from torch.overrides import TorchFunctionMode

from pertspectra.model._graph import GraphPrior, graph_nll, graph_nll_dense

DEVICES = ["cpu"] + (
    [pytest.param("cuda", marks=pytest.mark.gpu)] if torch.cuda.is_available() else []
)
RHO = 0.05


def _random_prior(g: int, density: float, seed: int, *, binary: bool) -> sp.csr_array:
    rng = np.random.default_rng(seed)
    upper = sp.random_array((g, g), density=density, rng=rng, format="coo")
    upper = sp.triu(upper, k=1)
    if binary:
        upper.data[:] = 1.0
    else:
        upper.data[:] = rng.uniform(0.05, 1.0, upper.data.size)
    return sp.csr_array(upper + upper.T)


def _params(
    g: int, L: int, seed: int, dtype: torch.dtype, device: str = "cpu"
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    w_free = torch.randn((L, g), generator=gen, dtype=torch.float64)
    b_free = torch.randn((L, L), generator=gen, dtype=torch.float64)
    k_free = torch.randn((), generator=gen, dtype=torch.float64)
    return tuple(t.to(device, dtype).requires_grad_() for t in (w_free, b_free, k_free))


def _loss_and_grads(fn, w_free, b_free, k_free, *, kappa_grad: bool = True):
    W = torch.softmax(w_free, dim=0)
    b = torch.sigmoid(b_free)
    B = 0.5 * (b + b.T)
    kappa = torch.sigmoid(k_free) if kappa_grad else torch.sigmoid(k_free).detach()
    value = fn(W, B, kappa)
    inputs = [w_free, b_free] + ([k_free] if kappa_grad else [])
    grads = torch.autograd.grad(value, inputs)
    return value.detach(), [gr.detach() for gr in grads]


def _assert_close(got: torch.Tensor, want: torch.Tensor, rtol: float) -> None:
    atol = rtol * 1e-2 * float(want.abs().max()) if want.numel() > 1 else 0.0
    torch.testing.assert_close(got, want, rtol=rtol, atol=atol)


@pytest.mark.parametrize(
    ("g", "L", "block", "prior_kind", "kappa_grad"),
    [
        (37, 5, 16, "weighted", True),
        (37, 5, 16, "none", True),
        (130, 9, 64, "weighted", True),
        (130, 9, 64, "binary", False),
        (130, 9, 16, "none", False),
        (130, 9, None, "binary", True),
        (200, 4, 23, "weighted", True),
    ],
)
def test_blocked_matches_dense_float64(
    g: int, L: int, block: int | None, prior_kind: str, kappa_grad: bool
) -> None:
    prior = None
    if prior_kind != "none":
        prior = GraphPrior.from_scipy(
            _random_prior(g, 0.15, g, binary=prior_kind == "binary"), dtype=torch.float64
        )
        assert prior.n_edges > 0
    params = _params(g, L, seed=g + L, dtype=torch.float64)
    v_blk, g_blk = _loss_and_grads(
        lambda W, B, k: graph_nll(W, B, k, rho=RHO, prior=prior, block_size=block),
        *params,
        kappa_grad=kappa_grad,
    )
    v_ref, g_ref = _loss_and_grads(
        lambda W, B, k: graph_nll_dense(W, B, k, rho=RHO, prior=prior),
        *params,
        kappa_grad=kappa_grad,
    )
    _assert_close(v_blk, v_ref, rtol=1e-10)
    assert len(g_blk) == len(g_ref) == (3 if kappa_grad else 2)
    for got, want in zip(g_blk, g_ref, strict=True):
        _assert_close(got, want, rtol=1e-10)


@pytest.mark.parametrize("kappa_grad", [True, False])
def test_square_tile_and_tiles_agree(kappa_grad: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    # small g runs as one square tile (both triangles, edges mirrored); larger g in tiles
    from pertspectra.model import _graph_kernel as kernel

    g, L = 130, 9
    prior = GraphPrior.from_scipy(_random_prior(g, 0.15, 3, binary=False), dtype=torch.float64)
    params = _params(g, L, seed=5, dtype=torch.float64)
    assert kernel.uses_square(g, 64, 16 * 64)
    assert not kernel.uses_square(g, 16, 16 * 16)
    runs = []
    for limit in (kernel.SQUARE_MAX_GENES, 0):
        monkeypatch.setattr(kernel, "SQUARE_MAX_GENES", limit)
        runs.append(
            _loss_and_grads(
                lambda W, B, k: graph_nll(W, B, k, rho=RHO, prior=prior, block_size=64),
                *params,
                kappa_grad=kappa_grad,
            )
        )
    ref = _loss_and_grads(
        lambda W, B, k: graph_nll_dense(W, B, k, rho=RHO, prior=prior),
        *params,
        kappa_grad=kappa_grad,
    )
    for v, grads in runs:
        _assert_close(v, ref[0], rtol=1e-10)
        for got, want in zip(grads, ref[1], strict=True):
            _assert_close(got, want, rtol=1e-10)


def test_float32_agrees_with_float64_reference() -> None:
    g, L = 300, 20
    A = _random_prior(g, 0.05, 3, binary=False)
    p64 = _params(g, L, seed=1, dtype=torch.float64)
    p32 = [t.detach().float().requires_grad_() for t in p64]
    prior32 = GraphPrior.from_scipy(A, dtype=torch.float32)
    v32, g32 = _loss_and_grads(
        lambda W, B, k: graph_nll(W, B, k, rho=RHO, prior=prior32, block_size=64), *p32
    )
    v64, g64 = _loss_and_grads(
        lambda W, B, k: graph_nll_dense(
            W, B, k, rho=RHO, prior=GraphPrior.from_scipy(A, dtype=torch.float64)
        ),
        *p64,
    )
    _assert_close(v32.double(), v64, rtol=1e-5)
    for got, want in zip(g32, g64, strict=True):
        err = float((got.double() - want).norm() / want.norm())
        assert err < 1e-4


def test_value_without_grad_and_with_constant_inputs() -> None:
    g, L = 90, 6
    prior = GraphPrior.from_scipy(_random_prior(g, 0.2, 0, binary=False), dtype=torch.float64)
    w_free, b_free, k_free = _params(g, L, seed=0, dtype=torch.float64)
    W = torch.softmax(w_free, 0).detach()
    b = torch.sigmoid(b_free).detach()
    B = 0.5 * (b + b.T)
    ref = graph_nll_dense(W, B, torch.sigmoid(k_free).detach(), rho=RHO, prior=prior)
    with torch.no_grad():
        got = graph_nll(W, B, torch.sigmoid(k_free), rho=RHO, prior=prior, block_size=32)
    assert not got.requires_grad
    torch.testing.assert_close(got, ref, rtol=1e-12, atol=0)
    # nothing requires grad, grad mode on; kappa as a python float
    got2 = graph_nll(
        W, B, float(torch.sigmoid(k_free.detach())), rho=RHO, prior=prior, block_size=25
    )
    torch.testing.assert_close(got2, ref, rtol=1e-12, atol=0)
    # only B requires grad
    Bg = B.clone().requires_grad_()
    (dB,) = torch.autograd.grad(graph_nll(W, Bg, 0.3, rho=RHO, prior=prior, block_size=32), [Bg])
    (dB_ref,) = torch.autograd.grad(graph_nll_dense(W, Bg, 0.3, rho=RHO, prior=prior), [Bg])
    _assert_close(dB, dB_ref, rtol=1e-10)


def test_grad_output_is_scaled() -> None:
    params = _params(50, 4, seed=5, dtype=torch.float64)
    grads = _loss_and_grads(
        lambda W, B, k: -3.0 * graph_nll(W, B, k, rho=RHO, prior=None, block_size=8), *params
    )[1]
    refs = _loss_and_grads(
        lambda W, B, k: -3.0 * graph_nll_dense(W, B, k, rho=RHO, prior=None), *params
    )[1]
    for got, want in zip(grads, refs, strict=True):
        _assert_close(got, want, rtol=1e-10)


def test_gradcheck_tiny() -> None:
    g, L = 11, 3
    prior = GraphPrior.from_scipy(_random_prior(g, 0.4, 2, binary=False), dtype=torch.float64)
    gen = torch.Generator().manual_seed(0)
    W = torch.softmax(torch.randn((L, g), generator=gen, dtype=torch.float64), 0).requires_grad_()
    b = torch.rand((L, L), generator=gen, dtype=torch.float64) * 0.8 + 0.1
    B = (0.5 * (b + b.T)).requires_grad_()
    kappa = torch.tensor(0.3, dtype=torch.float64, requires_grad=True)

    def fn(W: torch.Tensor, B: torch.Tensor, kappa: torch.Tensor) -> torch.Tensor:
        # symmetrise inside so that finite differences stay on symmetric B
        return graph_nll(W, 0.5 * (B + B.T), kappa, rho=RHO, prior=prior, block_size=4)

    assert torch.autograd.gradcheck(fn, (W, B, kappa), eps=1e-6, atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("block", [48, None])  # CUDA: 48-row tiles, or one square tile
def test_devices(device: str, dtype: torch.dtype, block: int | None) -> None:
    g, L = 150, 8
    A = _random_prior(g, 0.1, 7, binary=True)
    p64 = _params(g, L, seed=3, dtype=torch.float64)
    params = [t.detach().to(device, dtype).requires_grad_() for t in p64]
    prior = GraphPrior.from_scipy(A, dtype=dtype, device=device)
    assert prior.device.type == device
    v, grads = _loss_and_grads(
        lambda W, B, k: graph_nll(W, B, k, rho=RHO, prior=prior, block_size=block), *params
    )
    assert v.device.type == device
    assert v.dtype == dtype
    v_ref, g_ref = _loss_and_grads(
        lambda W, B, k: graph_nll_dense(W, B, k, rho=RHO, prior=prior.to("cpu", torch.float64)),
        *p64,
    )
    rtol = 1e-10 if dtype == torch.float64 else 1e-4
    _assert_close(v.cpu().double(), v_ref, rtol=rtol)
    for got, want in zip(grads, g_ref, strict=True):
        assert float((got.cpu().double() - want).norm() / want.norm()) < rtol


def test_large_g_runs_blocked() -> None:
    # g = 3000 with 256-row tiles: on CPU a tile is 256 x min(g, 16 * 256) = 256 x 3000, so the
    # pass holds two of them (~3 MiB each in float32) and g x 24 buffers (L padded to a multiple
    # of 8); a g x g float32 matrix would be 36 MB, and the dense autograd version keeps several
    # of them. Memory itself is measured in benchmarks/graph_term.py.
    g, L = 3000, 20
    w_free, b_free, k_free = _params(g, L, seed=11, dtype=torch.float32)
    W = torch.softmax(w_free, 0)
    b = torch.sigmoid(b_free)
    B = 0.5 * (b + b.T)
    with torch.no_grad():
        v0 = graph_nll(W, B, torch.sigmoid(k_free), rho=RHO, prior=None, block_size=256)
    v = graph_nll(W, B, torch.sigmoid(k_free), rho=RHO, prior=None, block_size=256)
    v.backward()
    assert torch.isfinite(v)
    assert float(v.detach()) == pytest.approx(float(v0), rel=1e-6)
    assert w_free.grad is not None
    assert torch.isfinite(w_free.grad).all()
    # the value bounds: every pair contributes -log q in [-log(a + rho), -log(rho)]
    assert 0 < float(v0) < g * (g - 1) * -np.log(RHO)


def _global_flags() -> tuple[bool, int, bool]:
    return (
        torch.backends.cuda.matmul.allow_tf32,
        torch.get_num_threads(),
        torch.backends.cudnn.allow_tf32,
    )


class _RecordFlags(TorchFunctionMode):
    """Records the global flags at every torch call made inside the mode."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: set[tuple[bool, int, bool]] = set()

    def __torch_function__(self, func, types, args=(), kwargs=None):
        self.seen.add(_global_flags())
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("device", DEVICES)
def test_global_torch_flags_untouched(device: str) -> None:
    # float32 is where a TF32 toggle would act; both TF32 states are tried so that forcing
    # either value inside the kernel is seen, even when it is restored afterwards
    g, L = 60, 5
    prior = GraphPrior.from_scipy(
        _random_prior(g, 0.2, 5, binary=False), dtype=torch.float32, device=device
    )
    params = [t.detach().to(device).requires_grad_() for t in _params(g, L, 6, torch.float32)]
    start = _global_flags()
    try:
        for tf32 in (start[0], not start[0]):
            torch.backends.cuda.matmul.allow_tf32 = tf32
            torch.backends.cudnn.allow_tf32 = not tf32
            before = _global_flags()
            with _RecordFlags() as rec:
                v, grads = _loss_and_grads(
                    lambda W, B, k: graph_nll(W, B, k, rho=RHO, prior=prior, block_size=16), *params
                )
            after = _global_flags()
            assert after == before
            assert rec.seen == {before}
            assert torch.isfinite(v)
            assert all(bool(torch.isfinite(gr).all()) for gr in grads)
    finally:
        torch.backends.cuda.matmul.allow_tf32 = start[0]
        torch.backends.cudnn.allow_tf32 = start[2]
    assert _global_flags() == start


def test_prior_from_scipy_roundtrip() -> None:
    g = 40
    A = _random_prior(g, 0.2, 1, binary=False).tolil()
    A[3, 3] = 0.5  # the diagonal is dropped
    A = sp.csr_array(A)
    prior = GraphPrior.from_scipy(A, dtype=torch.float64)
    dense = A.toarray()
    np.fill_diagonal(dense, 0)
    np.testing.assert_array_equal(prior.to_dense().numpy(), dense)
    assert prior.n_genes == g
    assert prior.n_edges == int((np.triu(dense, 1) > 0).sum())
    assert bool((prior.rows < prior.cols).all())
    p32 = prior.to(dtype=torch.float32)
    assert p32.dtype == torch.float32
    assert p32.n_edges == prior.n_edges
    assert prior.to("cpu", torch.float64) is prior
    # a dense numpy input works too
    assert GraphPrior.from_scipy(dense).n_edges == prior.n_edges


@pytest.mark.parametrize(
    ("matrix", "match"),
    [
        (sp.csr_array(np.ones((3, 4))), "square"),
        (sp.csr_array(np.array([[0.0, 1.0], [0.0, 0.0]])), "symmetric"),
        (sp.csr_array(np.array([[0.0, -0.5], [-0.5, 0.0]])), r"\[0, 1\]"),
        (sp.csr_array(np.array([[0.0, 2.0], [2.0, 0.0]])), r"\[0, 1\]"),
        (sp.csr_array(np.array([[0.0, np.nan], [np.nan, 0.0]])), "NaN"),
        (np.zeros(5), "square"),
    ],
)
def test_prior_validation(matrix: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        GraphPrior.from_scipy(matrix)


def test_input_validation() -> None:
    g, L = 20, 3
    w_free, b_free, _ = _params(g, L, seed=0, dtype=torch.float64)
    W = torch.softmax(w_free, 0)
    b = torch.sigmoid(b_free)
    B = 0.5 * (b + b.T)
    k = torch.tensor(0.2, dtype=torch.float64)
    with pytest.raises(ValueError, match="symmetric"):
        graph_nll(W, b + torch.triu(torch.ones_like(b), 1) * 0.01, k, rho=RHO, prior=None)
    with pytest.raises(ValueError, match="rho"):
        graph_nll(W, B, k, rho=1.5, prior=None)
    prior = GraphPrior.from_scipy(_random_prior(g + 1, 0.2, 0, binary=True))
    with pytest.raises(ValueError, match="genes"):
        graph_nll(W, B, k, rho=RHO, prior=prior)
    with pytest.raises(ValueError, match="dtype"):
        graph_nll(W, B.float(), k, rho=RHO, prior=None)
    with pytest.raises(ValueError, match="B must be"):
        graph_nll(W, B[:2, :2], k, rho=RHO, prior=None)


def test_prior_dtype_and_plan_cache_are_independent_of_w() -> None:
    # a float32 prior (binary weights: exact in float32) used with float64 parameters
    g, L = 70, 5
    A = _random_prior(g, 0.2, 4, binary=True)
    prior32 = GraphPrior.from_scipy(A, dtype=torch.float32)
    prior64 = GraphPrior.from_scipy(A, dtype=torch.float64)
    params = _params(g, L, seed=9, dtype=torch.float64)
    for block in (16, 16, 30):  # the second call reuses the cached plan
        v, grads = _loss_and_grads(
            lambda W, B, k, block=block: graph_nll(
                W, B, k, rho=RHO, prior=prior32, block_size=block
            ),
            *params,
        )
        v_ref, refs = _loss_and_grads(
            lambda W, B, k: graph_nll_dense(W, B, k, rho=RHO, prior=prior64), *params
        )
        _assert_close(v, v_ref, rtol=1e-10)
        for got, want in zip(grads, refs, strict=True):
            _assert_close(got, want, rtol=1e-10)
    assert prior32.dtype == torch.float32
