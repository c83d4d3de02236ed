"""Checks every per-op test file needs, written once."""

import os
import subprocess
import sys

import mlx.core as mx
import numpy as np

ISAS = ("baseline", "avx2", "avx512")

# Strided views of a 2-D array the kernels read in place (no copy): the layouts every
# row-wise op's test_layouts runs.
LAYOUTS_2D = {
    "transposed": lambda a: a.T,
    "strided": lambda a: a[:, ::2],
    "reversed": lambda a: a[::-1, ::-1],
    "offset": lambda a: a[1:, 3:],
    "broadcast": lambda a: mx.broadcast_to(a[:1], a.shape),
}


def isa_outputs(code: str) -> list[str]:
    """Runs ``code`` (which prints the ISA name first) once per CPU ISA level, in subprocesses
    (the level is fixed at first use); what each distinct level printed after its name."""
    outs = {}
    for isa in ISAS:
        env = {**os.environ, "MLXR_CPU_ISA": isa}
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
        name, _, rest = out.stdout.partition(" ")
        outs[name] = rest
    return list(outs.values())


def isa_sums(code: str) -> list[list[float]]:
    """The numbers ``code`` prints after the ISA name, per distinct ISA level (isa_outputs)."""
    return [[float(v) for v in rest.split()] for rest in isa_outputs(code)]


def isa_rows(code: str) -> list[np.ndarray]:
    """The lists ``code`` prints after the ISA name (``print(name, *lists)``), one array row per
    list, per distinct ISA level (isa_outputs)."""
    return [np.array(eval(rest.replace("] [", "],["))) for rest in isa_outputs(code)]


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
