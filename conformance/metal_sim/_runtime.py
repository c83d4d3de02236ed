"""Launch plans from the C++ headers, and dispatches on the simulator."""

from __future__ import annotations

import collections
import ctypes
import dataclasses
import functools
import json
from pathlib import Path

import numpy as np

from ._compile import compile_metal, compile_plans, source_root


class MetalSimError(RuntimeError):
    """A simulated dispatch faulted: out-of-bounds access, threadgroup race, barrier divergence,
    a set_bytes size the kernel does not read, or an unbound buffer."""


# Kernels dispatched on the simulator, by name: proof of which variant ran.
executed: collections.Counter[str] = collections.Counter()


@dataclasses.dataclass(frozen=True)
class Arg:
    kind: str  # input, output, bytes
    index: int  # [[buffer(index)]]
    array: int  # position among the op's inputs / outputs
    name: str
    payload: bytes


@dataclasses.dataclass(frozen=True)
class Plan:
    """What the Metal host encodes: kernel, grid (threadgroups), threadgroup size, set_* calls."""

    kernel: str
    grid: tuple[int, int, int]
    group: tuple[int, int, int]
    args: tuple[Arg, ...]


@functools.cache
def _plans() -> ctypes.CDLL:
    return ctypes.CDLL(str(compile_plans(source_root())))


def call_plan(op: str, *args) -> Plan:
    """``mlxr_plan_<op>(*args)`` from runtime/plans.cpp, i.e. the header the Metal host uses."""
    fn = getattr(_plans(), f"mlxr_plan_{op}")
    buf = ctypes.create_string_buffer(1 << 14)
    # Explicit widths: arguments past the sixth go on the stack, where an untyped Python int
    # fills only the low half of an int64_t slot.
    n = fn(*args, buf, ctypes.c_int64(len(buf)))
    if n >= len(buf):
        raise MetalSimError(f"launch plan of {op} is {n} bytes, larger than the buffer")
    raw = json.loads(buf.value.decode())
    return Plan(
        raw["kernel"],
        tuple(raw["grid"]),
        tuple(raw["group"]),
        tuple(Arg(a["kind"], a["index"], a["array"], a["name"], bytes.fromhex(a["bytes"])) for a in raw["args"]),
    )


class _Buffer(ctypes.Structure):
    _fields_ = [
        ("data", ctypes.c_void_p),
        ("nbytes", ctypes.c_int64),
        ("offset", ctypes.c_int64),
        ("name", ctypes.c_char_p),
    ]


def _binding(a: np.ndarray, name: str) -> _Buffer:
    """Binds ``a`` the way set_*_array binds an MLX array: the whole allocation is reachable,
    starting at ``a``'s first element (strided views keep their base buffer)."""
    root = a
    while isinstance(root.base, np.ndarray):
        root = root.base
    if not root.flags.c_contiguous:
        raise MetalSimError(f"buffer '{name}' views a non-contiguous allocation")
    start, first = root.ctypes.data, a.ctypes.data
    return _Buffer(first, start + root.nbytes - first, first - start, name.encode())


class Library:
    """A ``.metal`` file compiled for the simulator."""

    def __init__(self, metal_file: Path):
        path, self.kernels = compile_metal(metal_file)
        self._lib = ctypes.CDLL(str(path))
        self._lib.msl_sim_kernel_names.restype = ctypes.c_char_p
        self.names = set(self._lib.msl_sim_kernel_names().decode().split())

    def dispatch(self, kernel: str, grid, group, buffers: dict[int, tuple[np.ndarray, str]]) -> None:
        """Runs ``kernel`` over ``grid`` threadgroups of ``group`` threads (dispatch_threadgroups).

        ``buffers`` maps ``[[buffer(n)]]`` to (array, name); arrays are read and written in place.
        Raises MetalSimError on any fault the simulator detects.
        """
        n = max(buffers, default=-1) + 1
        table = (_Buffer * max(n, 1))()
        for index, (array, name) in buffers.items():
            table[index] = _binding(array, name)
        err = ctypes.create_string_buffer(4096)
        code = self._lib.msl_sim_dispatch(
            kernel.encode(),
            table,
            n,
            (ctypes.c_uint32 * 3)(*grid),
            (ctypes.c_uint32 * 3)(*group),
            err,
            ctypes.c_int64(len(err)),
        )
        if code:
            raise MetalSimError(f"{kernel}: {err.value.decode()}")


@functools.cache
def library(stem: str) -> Library:
    """The simulator build of ``kernels/<stem>.metal``."""
    return Library(source_root() / "kernels" / f"{stem}.metal")


def poisoned(shape, dtype) -> np.ndarray:
    """An output buffer with every bit set (NaN for floats), so unwritten elements show."""
    out = np.empty(shape, dtype)
    out.view(np.uint8)[...] = 0xFF
    return out


def execute(plan: Plan, lib: Library, inputs: list[np.ndarray], outputs: list[np.ndarray]) -> None:
    """Performs ``plan``'s set_input_array / set_output_array / set_bytes and its dispatch."""
    buffers: dict[int, tuple[np.ndarray, str]] = {}
    for arg in plan.args:
        if arg.index in buffers:
            raise MetalSimError(f"{plan.kernel}: launch plan binds buffer({arg.index}) twice")
        if arg.kind == "input":
            buffers[arg.index] = (inputs[arg.array], arg.name)
        elif arg.kind == "output":
            buffers[arg.index] = (outputs[arg.array], arg.name)
        else:
            buffers[arg.index] = (np.frombuffer(bytearray(arg.payload), np.uint8), arg.name)
    if plan.kernel not in lib.names:
        raise MetalSimError(f"launch plan names {plan.kernel}, which the library does not define")
    lib.dispatch(plan.kernel, plan.grid, plan.group, buffers)
    executed[plan.kernel] += 1
