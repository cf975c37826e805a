"""Type aliases shared across pertspectra."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, Union

import numpy as np

if TYPE_CHECKING:
    import torch

SeedLike = Union[int, np.random.Generator, None]  # noqa: UP007
DeviceLike = Union[str, "torch.device", None]
Encoding = Literal["gene", "label"]
Weighting = Literal["label", "uniform"]
Stopping = Literal["relative", "paper"]
Schedule = Literal["cosine", "stepped"]
Init = Literal["auto", "random", "means", "communities"]
Dtype = Literal["float32", "float64"]
MatmulPrecision = Literal["highest", "high", "medium"]
