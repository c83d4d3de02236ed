"""Benchmark cases for ``mlxr-conform bench``: one small module per op, found automatically.

Adding a case for a new op ``<op>`` (the same stem as ``reference/<op>.py`` and ``fused/<op>.py``):

1. Copy ``conformance/bench/rms_norm.py`` to ``conformance/bench/<op>.py`` (or let
   ``mlxr-conform new <op>`` write it).
2. Fill in ``BENCH = Bench(...)``: the shapes from the op's issue, small ``quick_shapes`` for
   tests, the dtypes, ``make_inputs(shape, dtype)`` returning the positional arguments that every
   column is called with, and ``bytes_moved(shape, dtype)``: the bytes a perfect kernel reads
   plus writes once (this sets the copy limit the op is measured against).
3. Set ``mlx=`` to MLX's own op when one exists (``mx.fast.layer_norm``, ``mx.softmax``, ...),
   with the same positional arguments; a lambda adapts the argument order if needed.
4. Compute-bound ops (matmuls) also set ``flops(shape, dtype)``: throughput is then GFLOP/s.
5. Check it: ``mlxr-conform bench <op> --quick``.

The fused column calls ``mlxr.fused.<op>`` and the reference column ``mlxr.reference.<op>``
unless ``fused=`` / ``reference=`` say otherwise. Modules whose name starts with ``_`` are not
cases.
"""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
from typing import Any, Callable, Sequence

Shape = tuple[int, ...]


@dataclasses.dataclass(frozen=True)
class Bench:
    """How to benchmark one op (see the module docstring)."""

    op: str
    shapes: Sequence[Shape]
    quick_shapes: Sequence[Shape]
    dtypes: Sequence[str]
    make_inputs: Callable[[Shape, Any], tuple]
    bytes_moved: Callable[[Shape, Any], int]
    mlx: Callable | None = None
    mlx_name: str | None = None
    flops: Callable[[Shape, Any], int] | None = None
    fused: Callable | None = None
    reference: Callable | None = None

    @property
    def unit(self) -> str:
        return "GFLOP/s" if self.flops else "GB/s"

    def columns(self) -> dict[str, tuple[str, Callable]]:
        """Implementation name -> (label, function), in table order (the copy column is added
        by the runner)."""
        fused = self.fused or _resolve(f"mlxr.fused.{self.op}", self.op)
        reference = self.reference or _resolve(f"mlxr.reference.{self.op}", self.op)
        cols = {"fused": (f"mlxr.fused.{self.op}", fused), "reference": (f"mlxr.reference.{self.op}", reference)}
        if self.mlx is not None:
            cols["mlx"] = (self.mlx_name or getattr(self.mlx, "__name__", "mlx"), self.mlx)
        return cols


def _resolve(module: str, name: str) -> Callable:
    """``module.name``, or a function raising why it is missing (that column then reports it)."""
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as error:
        reason = f"{module}.{name} is not implemented ({type(error).__name__}: {error})"

        def missing(*args, **kwargs):
            raise NotImplementedError(reason)

        return missing


def available() -> list[str]:
    """Names of the ops that have a bench case, sorted."""
    return sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))


def load(op: str) -> Bench:
    """The ``BENCH`` declared by ``conformance/bench/<op>.py``."""
    if op not in available():
        raise KeyError(f"no bench case for {op!r}: add conformance/bench/{op}.py "
                       f"(have: {', '.join(available()) or 'none'})")
    bench = importlib.import_module(f"{__name__}.{op}").BENCH
    if bench.op != op:
        raise ValueError(f"conformance/bench/{op}.py declares op {bench.op!r}, expected {op!r}")
    return bench
