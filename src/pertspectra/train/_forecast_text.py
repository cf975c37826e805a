"""Human-readable text of a fit forecast (``pertspectra fit --dry-run``)."""

from __future__ import annotations

from typing import Any


def _bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"  # pragma: no cover


def _duration(s: float) -> str:
    if s < 120:
        return f"{s:.0f} s"
    if s < 7200:
        return f"{s / 60:.0f} min"
    return f"{s / 3600:.1f} h"


def format_forecast(d: dict[str, Any]) -> str:
    """Human-readable lines of a :func:`forecast_fit` result."""
    m = d["memory_bytes"]
    parts = [
        ("parameters", m["parameters"]),
        ("gradients", m["gradients"]),
        ("AdamW state", m["optimizer"]),
        ("group statistics", m["group_stats"]),
        ("activations", m["activations"]),
    ]
    if d.get("graph", True):
        parts += [
            (f"graph blocks ({d['block_size']} rows)", m["graph_buffers"]),
            ("prior edges", m["edges"]),
        ]
    sec = d["seconds_per_epoch"]
    lines = [
        f"fit forecast: {d['n_labels']:,} labels x {d['n_genes']:,} genes, {d['n_design']:,} design "
        f"columns, {d['n_factors']} factors, {d['n_edges']:,} prior edges on {d['device']} ({d['dtype']})",
        f"  memory  ~{_bytes(m['total'])} on {d['device']}: "
        + ", ".join(f"{k} {_bytes(v)}" for k, v in parts),
        f"  host    group statistics table (float64) {_bytes(d['host_stats_bytes'])}; "
        "independent of the number of cells",
        f"  time    ~{sec:.3g} s per epoch ({d['timing']}); 300 epochs ~{_duration(300 * sec)}, "
        f"1,000 ~{_duration(1000 * sec)}, 10,000 (max) ~{_duration(10_000 * sec)}",
    ]
    return "\n".join(lines)
