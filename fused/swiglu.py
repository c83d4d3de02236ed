"""Fused SwiGLU, a drop-in for ``nn.silu(gate) * up``."""

from __future__ import annotations

import mlx.core as mx

from .. import _ext
from ..reference import swiglu as reference
from ..reference._dtypes import output_dtype
from ._dispatch import cast, has_kernel, resolve_stream, run_reference
from ._validate import require_array, require_floating

OP = "swiglu"


def swiglu(gate: mx.array, up: mx.array, *, stream=None) -> mx.array:
    """The gated MLP activation: ``y = silu(gate) * up = gate * sigmoid(gate) * up``.

    ``gate`` and ``up`` broadcast against each other (NumPy rules, as ``nn.silu(gate) * up``
    does); the output has the broadcast shape and dtype ``promote(gate.dtype, up.dtype)``,
    which must be floating. Arithmetic is float32 (float64 for float64 outputs) with one
    rounding at the end. Broadcast inputs are read through stride-0 views, never
    materialised; inputs that share a dense layout (both transposed, say) are processed in
    memory order and the output keeps that layout. Runs the fused kernel where one exists for
    the stream's device and the output dtype, otherwise the reference
    (``mlxr.reference.swiglu``); ``mlxr.fused.observe()`` shows which ran.
    """
    if stream is None:  # the common call, checked in C++ (csrc/bindings/hot_path.h)
        y = _ext.swiglu_hot(gate, up, reference)
        if y is not None:
            return y
    require_array(OP, "gate", gate)
    require_array(OP, "up", up)
    out_dtype = output_dtype(gate, up)
    require_floating(OP, "the output", out_dtype)
    try:
        shape = tuple(mx.broadcast_shapes(gate.shape, up.shape))
    except ValueError:
        raise ValueError(
            f"[{OP}] gate and up must have broadcastable shapes, got {tuple(gate.shape)} and {tuple(up.shape)}"
        ) from None
    s = resolve_stream(OP, stream)

    if not has_kernel(OP, s.device, out_dtype):
        return run_reference(OP, s, reference, gate, up)

    gate, up = cast(out_dtype, s, gate, up)
    if tuple(gate.shape) != shape:
        gate = mx.broadcast_to(gate, shape, stream=s)
    if tuple(up.shape) != shape:
        up = mx.broadcast_to(up, shape, stream=s)
    return _ext.swiglu(gate, up, reference, s)
