"""Helpers of the metal-sim kernel tests: inputs, float64 comparisons, plan shapes and
planted-bug kernels."""

from __future__ import annotations

import mlx.core as mx
import numpy as np

from mlxr.conformance.metal_sim import executed
from mlxr.conformance.metal_sim._compile import source_root
from mlxr.conformance.metal_sim._runtime import Library

NAMES = {mx.float32: "float32", mx.float16: "float16", mx.bfloat16: "bfloat16"}


def rand(shape, dtype, key, scale=1.0, shift=0.0):
    a = (mx.random.normal(shape, key=mx.random.key(key)) * scale + shift).astype(dtype)
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


def ulp_distance(a: np.ndarray, b: np.ndarray, bits: int) -> np.ndarray:
    """Units in the last place between two arrays of float bit patterns (sign-magnitude)."""
    sign = 1 << (bits - 1)
    ordered = lambda v: np.where(v & sign, -(v & (sign - 1)), v).astype(np.int64)  # noqa: E731
    return np.abs(ordered(a.astype(np.int64)) - ordered(b.astype(np.int64)))


def half_agreement(y: mx.array, expected: mx.array) -> tuple[int, float]:
    """(max ulp distance, fraction of bit-identical elements) of two half-precision arrays."""
    a, b = np.array(y.view(mx.uint16)), np.array(expected.view(mx.uint16))
    return int(ulp_distance(a, b, 16).max()), float(np.mean(a == b))


def mutant(tmp_path, stem, old, new):
    """kernels/<stem>.metal and the kernel headers it includes, with one planted bug (in
    whichever file holds the text); fails if the text to replace is gone."""
    files = [source_root() / "kernels" / f"{stem}.metal", *sorted((source_root() / "kernels").glob("*.h"))]
    sources = {f.name: f.read_text() for f in files}
    assert any(old in s for s in sources.values()), f"planted-bug anchor not found: {old!r}"
    for name, source in sources.items():
        (tmp_path / name).write_text(source.replace(old, new))
    return Library(tmp_path / f"{stem}.metal")


def assert_row_plan(p, op: str, dtype: str, d: int, limit: int, n_rows: int, n_args: int) -> None:
    """A row kernel's plan (4 elements per thread per pass): whole simdgroups, the single-pass
    kernel while the row fits the thread limit, else the looped one at the limit, and buffers
    bound in index order."""
    threads = p.group[0]
    assert threads % 32 == 0 and 32 <= threads <= limit and p.grid == (n_rows, 1, 1)
    if d <= 4 * limit:
        assert p.kernel == f"{op}_{dtype}" and threads >= -(-d // 4)
    else:
        assert p.kernel == f"{op}_looped_{dtype}" and threads == limit
    assert [a.index for a in p.args] == list(range(n_args))


# Weight (or bias) views of a 130-element vector with 65 entries, bound without a copy: the
# kernels read them at their stride.
WEIGHT_VIEWS = {
    "strided": lambda v: v[::2],
    "reversed": lambda v: v[:-66:-1],
    "broadcast": lambda v: np.broadcast_to(v[:1], v[::2].shape),
}
