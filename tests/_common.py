"""Checks every per-op test file needs, written once."""

import os
import subprocess
import sys

import mlx.core as mx
import numpy as np

ISAS = ("baseline", "avx2", "avx512")


def isa_sums(code: str) -> list[list[float]]:
    """Runs ``code`` (which prints the ISA name, then numbers) once per CPU ISA level, in
    subprocesses (the level is fixed at first use); the numbers of each distinct level."""
    outs = {}
    for isa in ISAS:
        env = {**os.environ, "MLXR_CPU_ISA": isa}
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
        name, *numbers = out.stdout.split()
        outs[name] = [float(v) for v in numbers]
    return list(outs.values())


def assert_isa_paths_agree(code: str, rtol: float = 1e-5) -> None:
    """Every ISA level the CPU supports computes the same function (to ``rtol``)."""
    values = isa_sums(code)
    for v in values[1:]:
        np.testing.assert_allclose(v, values[0], rtol=rtol)


def assert_pure(fn, *inputs: mx.array) -> None:
    """``fn(*inputs)`` leaves its inputs untouched and gives the same outputs twice."""
    before = [np.array(a) for a in inputs]
    first, second = fn(*inputs), fn(*inputs)
    for a, b in zip(inputs, before):
        np.testing.assert_array_equal(np.array(a), b)
    for a, b in zip(_leaves(first), _leaves(second)):
        np.testing.assert_array_equal(np.array(a), np.array(b))


def _leaves(out):
    return list(out) if isinstance(out, (tuple, list)) else [out]
