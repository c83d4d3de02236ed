"""mx.compile and mx.compile(shapeless=True) of the candidate vs the oracle; the shapeless
function is called again on a second shape of the same rank (exercising output_shapes)."""

from __future__ import annotations

import mlx.core as mx
from hypothesis import strategies as st

from ..strategies import samples

NAME = "compile"
EXAMPLES = 0.5


def variants(spec, impl, device, dtype):
    return ["compile", "shapeless"]


@st.composite
def _strategy(draw, case):
    sample = draw(samples(case.spec, case.dtype, nonempty=True, max_elements=4096))
    if case.variant == "shapeless":
        sample.extra["second_shape"] = [draw(st.integers(1, 9)) for _ in sample.shape]
    return sample


def strategy(case):
    return _strategy(case)


def run(case, sample):
    present = [a.name for a in case.spec.arrays if sample.arrays.get(a.name) is not None]
    constants = {**sample.statics, **{a.name: None for a in case.spec.arrays if a.name not in present}}

    def f(*arrays):
        return case.spec.invoke(case.fn, {**constants, **dict(zip(present, arrays))})

    compiled = mx.compile(f, shapeless=case.variant == "shapeless")
    first = tuple(sample.shape)
    shapes = [first] + ([tuple(sample.extra["second_shape"])] if case.variant == "shapeless" else [])
    try:
        for i, shape in enumerate(shapes):
            sample.shape = shape
            inputs = case.materialize(sample)
            with mx.stream(case.stream):
                got = compiled(*[inputs.args[n] for n in present])
                mx.eval(got)
            case.judge(got, case.reference(inputs.plain), case.oracle(inputs.oracle), sample,
                       f"{case.variant} call {i + 1} (shape {shape})")
    finally:
        sample.shape = first
