"""The kit's own fused op really ran its fused kernel (``mlxr.fused.observe()``), eagerly and
under mx.compile, for every layout — or, where no kernel exists for the device and dtype,
that the fallback was taken *and recorded* (then the check reports "not run": a fallback is
not a certified port). Applies to ``impl == "fused"`` only."""

from __future__ import annotations

import mlx.core as mx

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
