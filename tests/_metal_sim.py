"""Helpers of the metal-sim kernel tests: inputs, float64 comparisons and planted-bug kernels."""

import mlx.core as mx
import numpy as np

from mlxr.conformance.metal_sim import executed
from mlxr.conformance.metal_sim._compile import source_root
from mlxr.conformance.metal_sim._runtime import Library

NAMES = {mx.float32: "float32", mx.float16: "float16", mx.bfloat16: "bfloat16"}


def rand(shape, dtype, key, scale=1.0):
    a = (mx.random.normal(shape, key=mx.random.key(key)) * scale).astype(dtype)
    mx.eval(a)
    return a


def as64(a):
    return np.array(a.astype(mx.float32) if a.dtype == mx.bfloat16 else a).astype(np.float64)


def ran(kernel, fn):
    """fn(), asserting it dispatched ``kernel`` once on the simulator."""
    before = executed[kernel]
    result = fn()
    assert executed[kernel] == before + 1, f"{kernel} did not run"
    return result


def mutant(tmp_path, stem, old, new):
    """kernels/<stem>.metal with one planted bug; fails if the text to replace is gone."""
    source = (source_root() / "kernels" / f"{stem}.metal").read_text()
    assert source.count(old) >= 1, f"planted-bug anchor not found: {old!r}"
    path = tmp_path / f"{stem}.metal"
    path.write_text(source.replace(old, new))
    return Library(path)
