"""Which implementation runs where, and proof of what actually ran."""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import threading

import mlx.core as mx

from .. import _ext

# Ops with a compiled CPU kernel, and the dtypes each kernel handles.
CPU_KERNEL_DTYPES = {
    "rms_norm": (mx.float32, mx.float16, mx.bfloat16, mx.float64),
    "rope": (mx.float32, mx.float16, mx.bfloat16, mx.float64),
    "layer_norm": (mx.float32, mx.float16, mx.bfloat16, mx.float64),
    "add_rms_norm": (mx.float32, mx.float16, mx.bfloat16, mx.float64),
    "softmax": (mx.float32, mx.float16, mx.bfloat16, mx.float64),
    "swiglu": (mx.float32, mx.float16, mx.bfloat16, mx.float64),
    "quantized_matmul": (mx.float32, mx.float16, mx.bfloat16),
}
# Every GPU kernel handles float32 and the half types (no float64 kernels on GPUs).
_GPU_FLOATS = (mx.float32, mx.float16, mx.bfloat16)
# Ops with a Metal kernel (kernels/<op>.metal), and the dtypes each handles; metal-sim
# certifies these on Linux.
METAL_KERNEL_DTYPES = dict.fromkeys(
    ("rms_norm", "softmax", "swiglu", "quantized_matmul", "layer_norm", "add_rms_norm", "rope"), _GPU_FLOATS
)
# Ops with a CUDA kernel (kernels/<op>.cuh + csrc/cuda/<op>.cu), and the dtypes each handles.
CUDA_KERNEL_DTYPES = dict.fromkeys(
    ("rms_norm", "rope", "softmax", "swiglu", "layer_norm", "add_rms_norm", "quantized_matmul"), _GPU_FLOATS
)
# Ops with a compiled GPU kernel: the table of the backend this build compiled (none on CPU).
GPU_KERNEL_DTYPES: dict[str, tuple[mx.Dtype, ...]] = {
    "metal": METAL_KERNEL_DTYPES,
    "cuda": CUDA_KERNEL_DTYPES,
}.get(_ext.gpu_kernels, {})

# The C++ hot paths (csrc/bindings/hot_path.h) take the common call only where these tables
# list a kernel; they read them once, here.
for _op in CPU_KERNEL_DTYPES:
    _ext.set_kernel_dtypes(_op, False, list(CPU_KERNEL_DTYPES[_op]))
    _ext.set_kernel_dtypes(_op, True, list(GPU_KERNEL_DTYPES.get(_op, ())))

_fallbacks: collections.Counter[str] = collections.Counter()
_lock = threading.Lock()


def resolve_stream(op: str, stream) -> mx.Stream:
    """The stream a call runs on: ``stream`` may be None, a Stream, a Device or mx.cpu/mx.gpu."""
    if stream is None:
        return mx.default_stream(mx.default_device())
    if isinstance(stream, mx.Stream):
        return stream
    if isinstance(stream, mx.DeviceType):
        stream = mx.Device(stream)
    if isinstance(stream, mx.Device):
        return mx.default_stream(stream)
    raise ValueError(f"[{op}] stream must be None, a Stream or a Device, got {type(stream).__name__}")


def has_kernel(op: str, device: mx.Device, dtype: mx.Dtype) -> bool:
    """True when a fused kernel exists for ``op`` on ``device`` in ``dtype``."""
    table = CPU_KERNEL_DTYPES if device.type == mx.cpu else GPU_KERNEL_DTYPES
    return dtype in table.get(op, ())


def note_fallback(op: str, device: mx.Device) -> None:
    """Record that ``op`` ran as its reference (no fused kernel for this device/dtype)."""
    with _lock:
        _fallbacks[f"{'cpu' if device.type == mx.cpu else 'gpu'}:{op}"] += 1


def run_reference(op: str, stream: mx.Stream, reference, *args, **kwargs):
    """The fallback: ``reference(*args, **kwargs)`` on ``stream``, recorded for ``observe()``."""
    note_fallback(op, stream.device)
    with mx.stream(stream):
        return reference(*args, **kwargs)


def cast(dtype: mx.Dtype, stream: mx.Stream, *arrays):
    """``arrays`` cast to the output dtype on ``stream`` for the fused primitive (None stays None)."""
    return tuple(None if a is None else a.astype(dtype, stream=stream) for a in arrays)


@dataclasses.dataclass
class Observation:
    """What ran inside an ``observe()`` block: fused kernels executed and fallbacks taken."""

    kernels: dict[str, int] = dataclasses.field(default_factory=dict)
    fallbacks: dict[str, int] = dataclasses.field(default_factory=dict)

    def ran_kernel(self, device: str, op: str) -> bool:
        """True if a fused kernel of ``op`` (any dtype) executed on ``device`` ('cpu'/'gpu')."""
        prefix = f"{device}:{op}_"
        return any(k.startswith(prefix) for k in self.kernels)


def _diff(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {k: v - before.get(k, 0) for k, v in after.items() if v != before.get(k, 0)}


@contextlib.contextmanager
def observe():
    """Counts fused kernels executed and fallbacks taken inside the block.

    Kernels are counted when they run, not when the graph is built: evaluate inside the block.
    """
    obs = Observation()
    kernels_before = _ext.kernel_counts()
    with _lock:
        fallbacks_before = dict(_fallbacks)
    try:
        yield obs
    finally:
        mx.synchronize()
        obs.kernels = _diff(_ext.kernel_counts(), kernels_before)
        with _lock:
            obs.fallbacks = _diff(dict(_fallbacks), fallbacks_before)
