"""The benchmark part of ``mlxr-conform report``: the latest ``mlxr-conform bench`` row of each
(op, device, shape, dtype, column) as a table, and (HTML) the throughput-vs-size plots."""

from __future__ import annotations

import os
import types
from pathlib import Path

HEADER = ("op", "device", "shape", "dtype", "fused", "% of copy", "x reference", "x MLX", "fused kernel", "measured")


def load(path: str) -> list[dict] | None:
    """The rows of a bench results file, or None when there is none (a broken one raises ValueError)."""
    from .bench import load_results

    if not os.path.exists(path):
        return None
    try:
        return load_results(Path(path))["rows"]
    except SystemExit as refused:  # the bench command's own check, with its message
        raise ValueError(str(refused)) from None


def latest(rows: list[dict]) -> list[dict]:
    """Only the newest measurement of each (op, device, case, dtype, impl), in op order."""
    newest: dict[tuple, dict] = {}
    for r in rows:
        key = (r["op"], r["device"], r["case"], r["dtype"], r["impl"])
        if key not in newest or r["timestamp"] >= newest[key]["timestamp"]:
            newest[key] = r
    return sorted(newest.values(), key=lambda r: (r["op"], r["device"], r["bytes"], r["dtype"], r["impl"]))


def _num(value, spec: str, suffix: str = "") -> str:
    return "-" if value is None else format(value, spec) + suffix


def table(rows: list[dict]) -> list[tuple]:
    """One line per fused measurement (the other columns are its ratios)."""
    return [(r["op"], r["device"], r["case"], r["dtype"], f"{_num(r['throughput'], '.1f')} {r['unit']}",
             _num(r["pct_of_copy"], ".0f", " %"), _num(r["speedup_vs_reference"], ".2f"),
             _num(r["speedup_vs_mlx"], ".2f"), r["fused_kernel"] or "NONE (fallback)",
             f"{r['timestamp'][:16]} {r['machine']} ({r['isa']}, load {_num(r.get('load_avg_1m'), '.1f')})")
            for r in rows if r["impl"] == "fused"]


def markdown(rows: list[dict]) -> list[str]:
    out = ["", "## Benchmarks", "",
           "Latest `mlxr-conform bench` row per case: the fused op's median throughput, as a share of a plain "
           "copy of the same bytes on the same device (the physical limit), and its speed-up over the plain "
           "reference and MLX's own op.", "",
           "| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    return out + ["| " + " | ".join(line) + " |" for line in table(rows)]


def plots(rows: list[dict], directory: str) -> list[str]:
    """PNG per (op, device) in ``directory`` (the bench command's plot); [] without matplotlib."""
    from .bench import _have_matplotlib, plot

    if not _have_matplotlib():
        return []
    names = []
    for op, device in dict.fromkeys((r["op"], r["device"]) for r in rows):
        op_rows = [r for r in rows if (r["op"], r["device"]) == (op, device)]
        bench = types.SimpleNamespace(op=op, unit=op_rows[0]["unit"])
        names.append(plot(bench, op_rows, Path(directory)).name)
    return names
