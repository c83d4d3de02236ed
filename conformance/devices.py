"""The devices the engine certifies on: ``cpu`` and ``gpu`` (MLX devices) and ``metal-sim``.

``metal-sim`` is the fused op's Metal kernel (``kernels/<op>.metal``) run through its launch plan
on the CPU simulator (``mlxr.conformance.metal_sim``): the candidate is the op's metal-sim host
(``metal_sim.ops.OPS[op]``, what ``csrc/metal/<op>.cpp`` does on a Mac); inputs, the reference
and the oracle run on the CPU stream. Checks of MLX transforms around the kernel (autodiff, vmap,
compile), of the Python validation before it and purity (vacuous on the simulator) are recorded
"not applicable" there: they certify the fused op itself on cpu / gpu, not the kernel, and
never count as passed.
"""

from __future__ import annotations

import functools
import sys

METAL_SIM = "metal-sim"
DEVICES = ("cpu", "gpu", METAL_SIM)
# The simulator runs a fiber per GPU thread (a row of 4 elements costs a 32-thread threadgroup):
# examples stay small. Threshold probes still reach their row length (one row of 4097).
METAL_SIM_MAX_ELEMENTS = 1 << 11
_NOT_APPLICABLE = {
    "autodiff": "gradients are the fused op's vjp/jvp (MLX ops), not the Metal kernel",
    "vmap": "vmap is an MLX transform of the fused op, not the Metal kernel",
    "compile": "mx.compile traces the fused op's MLX graph; the kernel is the same eagerly",
    "errors": "arguments are validated in Python before any kernel runs (certified on cpu)",
    # Vacuous here: the glue copies inputs to fresh buffers and the simulator runs threads in one
    # fixed order; it faults on races itself, and tests/test_metal_sim*.py run kernels in place.
    "purity": "metal-sim copies inputs and runs threads in one fixed order (races fault on every check)",
    "fused_path:compile": "mx.compile traces the fused op's MLX graph; fused_path[eager] proves the kernel ran",
}


def mlx_device(device: str):
    """The MLX device whose streams a case on ``device`` uses (metal-sim: the CPU)."""
    import mlx.core as mx

    return mx.Device(mx.gpu if device == "gpu" else mx.cpu)


@functools.cache
def metal_sim_ops() -> tuple[str, ...]:
    """Ops with a metal-sim host (``metal_sim.ops.OPS``)."""
    from .metal_sim.ops import OPS

    return tuple(sorted(OPS))


def available(device: str) -> tuple[bool, str]:
    """Whether ``device`` can run here, and why not."""
    import mlx.core as mx

    if device == METAL_SIM:
        from . import metal_sim

        # Fibers are glibc makecontext and the build flags GCC's: a Mac runs the real device instead.
        return (sys.platform.startswith("linux") and metal_sim.available(),
                "metal-sim needs Linux, g++ and the kernel sources (kernels/, csrc/metal/launch/)")
    return device == "cpu" or mx.is_available(mx.gpu), f"device {device} is not available"


def target(spec, device: str, target: str) -> str | None:
    """The implementation certified on ``device`` for the requested ``target``, or None.

    On metal-sim only the fused op runs, as its Metal kernel's host (where it has one): other
    candidates are not Metal kernels."""
    if device != METAL_SIM:
        return target
    if target == spec.fused and spec.name in metal_sim_ops():
        return f"mlxr.conformance.metal_sim.ops:{spec.name}"
    return None


def dtypes(spec, device: str) -> tuple[str, ...]:
    """Dtype cases of ``spec`` on ``device``; metal-sim: the gpu cases whose output dtype the
    Metal kernel handles (``METAL_KERNEL_DTYPES``)."""
    if device != METAL_SIM:
        return spec.dtypes.get(device, ())
    import mlx.core as mx

    from mlxr.fused._dispatch import METAL_KERNEL_DTYPES

    from .spec import dtype_case

    handled = METAL_KERNEL_DTYPES.get(spec.name, ())
    out_dtype = lambda case: mx.result_type(*(getattr(mx, d) for d in dtype_case(case, spec).values()))  # noqa: E731
    return tuple(case for case in spec.dtypes.get("gpu", ()) if out_dtype(case) in handled)


def not_applicable(device: str, check: str, variant: str | None) -> str | None:
    """Why ``check[variant]`` does not apply on ``device`` (None: it applies)."""
    if device != METAL_SIM:
        return None
    return _NOT_APPLICABLE.get(f"{check}:{variant}") or _NOT_APPLICABLE.get(check)


def kernels() -> dict[str, list[str]]:
    """Ops with a kernel per backend, for the results file (the report's "no kernel" cells)."""
    from mlxr.fused import _dispatch

    return {"cpu": sorted(_dispatch.CPU_KERNEL_DTYPES), "cuda": sorted(_dispatch.CUDA_KERNEL_DTYPES),
            "metal": sorted(_dispatch.METAL_KERNEL_DTYPES), METAL_SIM: list(metal_sim_ops())}
