"""Readers for public Perturb-seq screen formats.

Every reader returns a cells x genes AnnData whose ``var_names`` are unique gene symbols (ids in
a var column), with ``obs["perturbation"]`` in the core's label convention (``"A"``,
``"A+B"``, ``"ctrl"``, or an exclude label such as ``none_detected``),
``uns["pertspectra_target_types"]`` (token -> ``"gene"``, ``"enhancer"``, ..., ``"control"``,
``"exclude"``) and ``uns["pertspectra_io"]`` (a summary, including ``exclude_labels`` to pass
to :func:`pertspectra.design.canonical_labels`). Inputs are only read.

- :func:`read_norman2019`: the GEO files of Norman et al. 2019 (10x v2 + ``cell_identities``);
- :func:`read_screen`: .h5ad files in the scPerturb, GEARS, CPA, Replogle or sceptre conventions;
- :func:`write_h5ad`, :func:`write_table`, :func:`write_json`: outputs written to a temporary file, then renamed.

Non-gene targets (enhancers) are renamed ``<name>_<type>`` (``GATA1_enhancer``), see
:func:`target_token`.
"""

from __future__ import annotations

from ._common import IO_UNS, MISSING_LABEL, PERTURBATION_KEY, make_names_unique
from ._conventions import Convention, detect_convention, read_screen
from ._norman import read_norman2019
from ._targets import is_locus_name, normalise_target_type, target_token
from ._write import write_h5ad, write_json, write_table

__all__ = [
    "IO_UNS",
    "MISSING_LABEL",
    "PERTURBATION_KEY",
    "Convention",
    "detect_convention",
    "is_locus_name",
    "make_names_unique",
    "normalise_target_type",
    "read_norman2019",
    "read_screen",
    "target_token",
    "write_h5ad",
    "write_json",
    "write_table",
]
