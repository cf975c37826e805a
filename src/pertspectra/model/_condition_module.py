r"""The parameters of the model for a screen under several conditions (the authors' cell-type model).

Shared programs (``n_factors`` of them: :math:`\tilde W_0`, :math:`B_0`, :math:`\nu_0`,
:math:`\kappa_0`) and, per condition :math:`c`, ``condition_factors`` programs of its own
(:math:`\tilde W_c`, :math:`B_c`, :math:`\nu_c`, :math:`\kappa_c`) and its own loadings
:math:`P_c` (design columns x (shared + own factors)) and on-target terms :math:`t_c`. Each block
of :math:`W` is a softmax over its own factors, scaled by its own gene scaling; for a design row
:math:`h` in condition :math:`c`

.. math::

    \mu = (hP_c)\begin{bmatrix}(\nu_0+\delta)\odot W_0\\(\nu_c+\delta)\odot W_c\end{bmatrix}
    \;=\; (\nu'_c + \delta) \odot (hP_c)W'_c,\qquad
    \nu'_c = \nu_0 + \nu_c + \delta,

with :math:`W'_c` the stacked, scaled blocks divided by their column sums (each gene's column
on the simplex again). The right-hand side is the one-condition model, so each condition is a
:class:`~pertspectra.model.FittedModel` of ``n_factors + condition_factors`` factors (the
``"effects"`` clamp and the on-target factor apply to it as there). With
``condition_factors = 0`` the conditions share every program and differ only in :math:`P_c`.

:meth:`ConditionModule.mean` takes design rows with one extra one-hot column per condition
appended (rows x (design columns + conditions)), so the one loss function
(:func:`~pertspectra.model.pertspectra_loss`) needs nothing else; :meth:`graph_blocks` lists the
graph terms with their weights: the shared block's with weight 1, condition :math:`c`'s with
:math:`n_c / n` (its share of the cells), as the authors weight them.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ._config import ModelConfig
from ._module import _xavier_uniform


class ConditionModule(nn.Module):
    """Free parameters of the condition model and their constrained transforms.

    Parameters
    ----------
    n_design
        Number of design columns ``p`` (perturbations, ``ctrl``, ``basal``).
    n_genes
        Number of genes ``g``.
    config
        Hyperparameters; ``config.n_factors`` is the number of shared programs.
    condition_share
        Per condition, its share :math:`n_c / n` of the cells (weights its graph term).
    condition_factors
        Programs of each condition's own (0: only shared programs).
    generator
        CPU generator for the initialisation (seeded by the caller).
    dtype
        Parameter dtype.
    on_target_gene
        Per design column, the index of its measured target gene or ``-1``.
    """

    def __init__(
        self,
        n_design: int,
        n_genes: int,
        config: ModelConfig,
        *,
        condition_share: Sequence[float],
        condition_factors: int,
        generator: torch.Generator,
        dtype: torch.dtype = torch.float32,
        on_target_gene: Sequence[int] | None = None,
    ) -> None:
        super().__init__()
        if config.n_factors is None:
            msg = "config.n_factors is None: resolve it first (default_n_factors)"
            raise ValueError(msg)
        n_conditions = len(condition_share)
        if n_conditions < 1 or int(condition_factors) < 0:
            msg = f"need >= 1 condition and condition_factors >= 0, got {n_conditions}, {condition_factors}"
            raise ValueError(msg)
        L0, Lc = int(config.n_factors), int(condition_factors)
        self.config = config
        self.n_design, self.n_conditions, self.n_shared, self.n_own = n_design, n_conditions, L0, Lc
        p0 = torch.randn((n_conditions, n_design, L0 + Lc), generator=generator, dtype=dtype)
        if config.parametrization == "effects":
            p0[:, :-2] *= 0.01  # perturbations start near "no effect"
        self.p_free = nn.Parameter(p0)
        self.w_free = nn.Parameter(_xavier_uniform((L0, n_genes), generator, dtype))
        self.b_free = nn.Parameter(_xavier_uniform((L0, L0), generator, dtype))
        self.gene_scale_free = nn.Parameter(torch.zeros(n_genes, dtype=dtype))
        own = [
            (
                _xavier_uniform((Lc, n_genes), generator, dtype),
                _xavier_uniform((Lc, Lc), generator, dtype),
            )
            if Lc
            else (torch.zeros((0, n_genes), dtype=dtype), torch.zeros((0, 0), dtype=dtype))
            for _ in range(n_conditions)
        ]
        self.w_own_free = nn.Parameter(torch.stack([w for w, _ in own]))
        self.b_own_free = nn.Parameter(torch.stack([b for _, b in own]))
        self.gene_scale_own_free = nn.Parameter(torch.zeros((n_conditions, n_genes), dtype=dtype))
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
        self.t_free: torch.Tensor
        if cols:
            self.t_free = nn.Parameter(torch.zeros((n_conditions, len(cols)), dtype=dtype))
        else:
            self.register_buffer("t_free", torch.zeros((n_conditions, 0), dtype=dtype))
        share = torch.as_tensor([float(x) for x in condition_share], dtype=dtype)
        self.condition_share: torch.Tensor
        self.register_buffer("condition_share", share)
        kappa0 = torch.randn((1 + n_conditions,), generator=generator, dtype=dtype)
        if config.kappa is None:
            self.kappa_free = nn.Parameter(kappa0)
        else:
            k = float(config.kappa)
            self.register_buffer(
                "kappa_free",
                torch.full((1 + n_conditions,), torch.logit(torch.tensor(k)).item(), dtype=dtype),
            )

    # ----------------------------------------------------------------- transforms
    @property
    def P(self) -> torch.Tensor:
        """Loadings per condition: conditions x design columns x (shared + own factors).

        As :attr:`PertSpectraModule.P <pertspectra.model.PertSpectraModule.P>`, per condition.
        """
        if self.config.parametrization == "paper":
            return torch.exp(self.p_free)
        signed = self.p_free[:, :-2]
        return torch.cat(
            [signed, torch.zeros_like(self.p_free[:, -2:-1]), torch.exp(self.p_free[:, -1:])],
            dim=1,
        )

    @property
    def W(self) -> torch.Tensor:
        """Shared programs' gene loadings (shared factors x genes), columns on the simplex."""
        return torch.softmax(self.w_free, dim=0)

    @property
    def W_own(self) -> torch.Tensor:
        """Each condition's own programs (conditions x own factors x genes)."""
        return torch.softmax(self.w_own_free, dim=1)

    @property
    def B(self) -> torch.Tensor:
        """Shared factor-factor affinities (symmetric, in (0, 1))."""
        b = torch.sigmoid(self.b_free)
        return 0.5 * (b + b.T)

    @property
    def B_own(self) -> torch.Tensor:
        """Each condition's factor-factor affinities (conditions x own x own)."""
        b = torch.sigmoid(self.b_own_free)
        return 0.5 * (b + b.transpose(1, 2))

    @property
    def gene_scale(self) -> torch.Tensor:
        """Shared programs' gene scaling in (0, 1)."""
        return torch.sigmoid(self.gene_scale_free)

    @property
    def gene_scale_own(self) -> torch.Tensor:
        """Each condition's own programs' gene scaling (conditions x genes)."""
        return torch.sigmoid(self.gene_scale_own_free)

    @property
    def kappa(self) -> torch.Tensor:
        """Background edge rates: the shared block's first, then one per condition."""
        return torch.sigmoid(self.kappa_free)

    @property
    def on_target(self) -> torch.Tensor:
        """On-target log-factors (conditions x design columns; zero where a column has none)."""
        out = self.t_free.new_zeros((self.n_conditions, self.n_design))
        return out.index_copy(1, self.on_target_cols, self.t_free)

    def combined(self, c: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Condition ``c`` as a one-condition model: ``(W'_c, nu'_c)`` (see the module docstring)."""
        delta = self.config.delta
        blocks = [(self.gene_scale + delta) * self.W]
        if self.n_own:
            blocks.append((self.gene_scale_own[c] + delta) * self.W_own[c])
        scaled = torch.cat(blocks, dim=0)
        total = scaled.sum(dim=0)
        return scaled / total, total - delta

    # ----------------------------------------------------------------- the model
    def mean(self, design: torch.Tensor) -> torch.Tensor:
        """Expected expression of design rows with the condition one-hot appended (rows x genes)."""
        h, onehot = design[:, : self.n_design], design[:, self.n_design :]
        if onehot.shape[1] != self.n_conditions:
            msg = f"design rows need {self.n_design} + {self.n_conditions} columns, got {design.shape[1]}"
            raise ValueError(msg)
        P, delta = self.P, self.config.delta
        out = h.new_zeros((h.shape[0], self.w_free.shape[1]))
        for c in range(self.n_conditions):
            rows = torch.nonzero(onehot[:, c] > 0).flatten()
            if rows.numel() == 0:
                continue
            W, nu = self.combined(c)
            hc = h.index_select(0, rows)
            hpw = (hc @ P[c]) @ W
            if self.config.parametrization == "effects":
                hpw = hpw.clamp_min(self.config.floor)
            if self.t_free.shape[1]:
                logm = hpw.new_zeros(hpw.shape).index_add(
                    1, self.on_target_genes, hc[:, self.on_target_cols] * self.t_free[c]
                )
                hpw = hpw * torch.exp(logm)
            out = out.index_copy(0, rows, (nu + delta) * hpw)
        return out

    def graph_blocks(
        self,
    ) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | float]]:
        """``(W, B, kappa, weight)`` of each graph term: shared (weight 1), then each condition's."""
        kappa = self.kappa
        out: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | float]] = [
            (self.W, self.B, kappa[0], 1.0)
        ]
        if self.n_own:
            W_own, B_own = self.W_own, self.B_own
            for c in range(self.n_conditions):
                out.append((W_own[c], B_own[c], kappa[1 + c], self.condition_share[c]))
        return out
