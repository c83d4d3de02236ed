"""The kit's own fused op really ran its fused kernel (``mlxr.fused.observe()``), eagerly and
under mx.compile, for every layout — or, where no kernel exists for the device and dtype,
that the fallback was taken *and recorded* (then the check reports "not run": a fallback is
not a certified port). Applies to ``impl == "fused"`` only. On metal-sim: the op's Metal kernel
was dispatched on the simulator (``metal_sim.executed``), eagerly."""

from __future__ import annotations

import mlx.core as mx

from ..devices import METAL_SIM
from ..numerics import dtype_name
from ..strategies import samples

NAME = "fused_path"
EXAMPLES = 0.5


def variants(spec, impl, device, dtype):
    return ["eager", "compile"] if impl == "fused" and spec.kernel else []


def strategy(case):
    return samples(case.spec, case.dtype, layout="any" if case.variant == "eager" else None, nonempty=True)


def run(case, sample):
    import pytest

    from mlxr.fused import has_kernel, observe

    inputs = case.materialize(sample)
    out_dtype = case.reference(inputs.plain).dtype
    present = {k: v for k, v in inputs.args.items()}
    fn = case.fn
    if case.device == METAL_SIM:
        return _dispatched_on_metal_sim(case, sample, present, out_dtype)
    if case.variant == "compile":
        arrays = [a.name for a in case.spec.arrays if present[a.name] is not None]
        constants = {k: v for k, v in present.items() if k not in arrays}
        compiled = mx.compile(lambda *xs: case.spec.invoke(fn, {**constants, **dict(zip(arrays, xs))}))
        call = lambda: compiled(*[present[n] for n in arrays])
    else:
        call = lambda: case.spec.invoke(fn, present)
    with observe() as seen:
        with mx.stream(case.stream):
            mx.eval(call())
    kernel = case.spec.kernel
    if has_kernel(case.spec.name, case.stream, out_dtype):
        if not seen.ran_kernel(case.device, kernel) or seen.fallbacks:
            case.fail(f"no fused {case.device} kernel {kernel}_{dtype_name(out_dtype)} ran "
                      f"(kernels {seen.kernels}, fallbacks {seen.fallbacks})", sample)
        return
    if not seen.fallbacks:
        case.fail(f"no kernel for {case.device}/{dtype_name(out_dtype)} and no fallback recorded (silent fallback)", sample)
    pytest.skip(f"not run: no fused {case.device} kernel for {dtype_name(out_dtype)} (fallback observed)")


def _dispatched_on_metal_sim(case, sample, present, out_dtype):
    from ..metal_sim import executed

    before = dict(executed)
    case.candidate(present)
    ran = [k for k, v in executed.items() if v != before.get(k, 0)]
    # Kernel names are <op>[_<variant>]_<dtype>.
    prefix, suffix = f"{case.spec.kernel}_", f"_{dtype_name(out_dtype)}"
    if not any(k.startswith(prefix) and k.endswith(suffix) for k in ran):
        case.fail(f"no Metal kernel {prefix}*{suffix} was dispatched on metal-sim (dispatched: {ran})", sample)
