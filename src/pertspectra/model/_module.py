r"""The PertSpectra parameters as a torch module; it sees only tensors.

.. math::

    P = \exp(\tilde P),\quad W_{\cdot j} = \mathrm{softmax}(\tilde W_{\cdot j}),\quad
    B = \tfrac12(\sigma(\tilde B) + \sigma(\tilde B)^\top),\quad
    \nu = \sigma(\tilde\nu),\quad \kappa = \sigma(\tilde\kappa)

and the mean of a design row :math:`h` is :math:`(\nu + \delta) \odot (h P) W`, times
:math:`\exp(t_k)` on gene :math:`j` for each perturbation :math:`k` of :math:`h` whose target
:math:`j` is measured, when ``config.on_target`` (see :mod:`pertspectra.model._mean`).
Initialisation as the authors: Xavier-uniform :math:`\tilde W` and :math:`\tilde B`,
:math:`\mathcal N(0,1)` for :math:`\tilde P` and :math:`\tilde\kappa`, zeros for :math:`\tilde\nu`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from ._config import ModelConfig


def _xavier_uniform(
    shape: tuple[int, int], generator: torch.Generator, dtype: torch.dtype
) -> torch.Tensor:
    fan_out, fan_in = shape
    bound = math.sqrt(6.0 / (fan_in + fan_out))
    return (torch.rand(shape, generator=generator, dtype=dtype) * 2 - 1) * bound


class PertSpectraModule(nn.Module):
    """Free parameters and their constrained transforms.

    Parameters
    ----------
    n_design
        Number of design columns ``p`` (perturbations, ``ctrl``, ``basal``).
    n_genes
        Number of genes ``g``.
    config
        Hyperparameters.
    generator
        CPU generator for the initialisation (seeded by the caller).
    dtype
        Parameter dtype.
    on_target_gene
        Per design column, the index of its measured target gene or ``-1`` (used only when
        ``config.on_target``; ``None``: no column has one).
    """

    def __init__(
        self,
        n_design: int,
        n_genes: int,
        config: ModelConfig,
        *,
        generator: torch.Generator,
        dtype: torch.dtype = torch.float32,
        on_target_gene: Sequence[int] | None = None,
    ) -> None:
        super().__init__()
        if config.n_factors is None:
            msg = "config.n_factors is None: resolve it first (default_n_factors)"
            raise ValueError(msg)
        n_factors = int(config.n_factors)
        self.config = config
        p0 = torch.randn((n_design, n_factors), generator=generator, dtype=dtype)
        if config.parametrization == "effects":
            p0[:-2] *= 0.01  # perturbations start near "no effect"
        self.p_free = nn.Parameter(p0)
        self.w_free = nn.Parameter(_xavier_uniform((n_factors, n_genes), generator, dtype))
        self.b_free = nn.Parameter(_xavier_uniform((n_factors, n_factors), generator, dtype))
        self.gene_scale_free = nn.Parameter(torch.zeros(n_genes, dtype=dtype))
        gene = [-1] * n_design if on_target_gene is None else [int(x) for x in on_target_gene]
        if len(gene) != n_design:
            msg = f"on_target_gene has {len(gene)} entries, expected {n_design} design columns"
            raise ValueError(msg)
        cols = [k for k, j in enumerate(gene) if j >= 0] if config.on_target else []
        self.on_target_cols: torch.Tensor
        self.on_target_genes: torch.Tensor
        self.register_buffer("on_target_cols", torch.tensor(cols, dtype=torch.long))
        self.register_buffer(
            "on_target_genes", torch.tensor([gene[k] for k in cols], dtype=torch.long)
        )
        self.n_design = n_design
        self.t_free: torch.Tensor
        if cols:
            self.t_free = nn.Parameter(torch.zeros(len(cols), dtype=dtype))
        else:  # not a parameter: nothing to optimise
            self.register_buffer("t_free", torch.zeros(0, dtype=dtype))
        kappa0 = torch.randn((), generator=generator, dtype=dtype)
        if config.kappa is None:
            self.kappa_free = nn.Parameter(kappa0)
        else:
            k = float(config.kappa)
            self.register_buffer("kappa_free", torch.tensor(math.log(k / (1 - k)), dtype=dtype))

    @property
    def P(self) -> torch.Tensor:
        """Perturbation loadings, design columns x factors.

        ``"paper"``: all positive. ``"effects"``: perturbation rows signed, the ``ctrl`` row (the
        second to last design column) zero, the ``basal`` row (the last) positive.
        """
        if self.config.parametrization == "paper":
            return torch.exp(self.p_free)
        signed = self.p_free[:-2]
        return torch.cat(
            [signed, torch.zeros_like(self.p_free[-2:-1]), torch.exp(self.p_free[-1:])]
        )

    @property
    def W(self) -> torch.Tensor:
        """Gene loadings, factors x genes; each gene's column sums to one."""
        return torch.softmax(self.w_free, dim=0)

    @property
    def B(self) -> torch.Tensor:
        """Factor-factor edge affinities, symmetric in (0, 1)."""
        b = torch.sigmoid(self.b_free)
        return 0.5 * (b + b.T)

    @property
    def gene_scale(self) -> torch.Tensor:
        """Gene scaling ``nu`` in (0, 1) (``delta`` not included)."""
        return torch.sigmoid(self.gene_scale_free)

    @property
    def kappa(self) -> torch.Tensor:
        """Background edge rate in (0, 1)."""
        return torch.sigmoid(self.kappa_free)

    @property
    def on_target(self) -> torch.Tensor:
        """On-target log-factors per design column (zero where a column has none)."""
        out = self.t_free.new_zeros(self.n_design)
        return out.index_copy(0, self.on_target_cols, self.t_free)

    def mean(self, design: torch.Tensor) -> torch.Tensor:
        """Expected expression for design rows (rows x genes)."""
        hpw = (design @ self.P) @ self.W
        if self.config.parametrization == "effects":
            hpw = hpw.clamp_min(self.config.floor)
        if self.t_free.numel():
            logm = hpw.new_zeros(hpw.shape).index_add(
                1, self.on_target_genes, design[:, self.on_target_cols] * self.t_free
            )
            hpw = hpw * torch.exp(logm)
        return (self.gene_scale + self.config.delta) * hpw
