"""mx.compile and mx.compile(shapeless=True) of the candidate vs the oracle; the shapeless
function is called again on a second shape of the same rank (exercising output_shapes).

MLX 0.32.4 segfaults in shapeless-compiled reductions over a size-1 last axis of rank >= 2
(``mx.compile(lambda x: mx.sum(x, -1, keepdims=True), shapeless=True)(mx.ones((3, 1)))``):
such examples always run (an explicit example) and run in a subprocess, so a crash is a
recorded failure instead of a dead test run.
"""

from __future__ import annotations

import json
import subprocess
import sys

import mlx.core as mx
from hypothesis import strategies as st

from ..strategies import ArgRecipe, Sample, ValueRecipe, samples

NAME = "compile"
EXAMPLES = 0.5


def variants(spec, impl, device, dtype):
    return ["compile", "shapeless"]


@st.composite
def _strategy(draw, case):
    sample = draw(samples(case.spec, case.dtype, nonempty=True, max_elements=4096))
    if case.variant == "shapeless":
        sample.extra["second_shape"] = [draw(st.integers(1, 9)) for _ in sample.shape]
        if case.spec.shape_bound_last_axis:  # the call derives statics from it (rope's dims)
            sample.extra["second_shape"][-1] = sample.shape[-1]
    return sample


def strategy(case):
    return _strategy(case)


def explicit(case):
    """The size-1 last axis that crashes MLX's shapeless compile (see module docstring)."""
    if case.variant != "shapeless":
        return []
    dtypes = case.dtypes()
    arrays = {a.name: ArgRecipe(dtypes[a.name], ValueRecipe()) for a in (*case.spec.arrays, *case.spec.derived)}
    # Leading 1s up to the spec's minimum rank (e.g. rope needs rank >= 3).
    lead = (1,) * max(0, case.spec.ranks[0] - 2)
    return [Sample((*lead, 3, 1), arrays, {s.name: s.values[0] for s in case.spec.statics},
                   {"second_shape": [*lead, 2, 1]})]


def _risky(case, sample) -> bool:
    mains = [tuple(sample.shape), tuple(sample.extra.get("second_shape") or ())]
    shapes = [a.shape_for(m, sample.statics) for m in mains if m for a in case.spec.arrays]
    return any(len(s) >= 2 and s[-1] == 1 for s in shapes)


def _isolated(case, sample) -> None:
    payload = json.loads(case.repro(sample).split(" ", 3)[3].strip("'"))
    payload["isolated"] = True
    proc = subprocess.run([sys.executable, "-m", "mlxr.conformance.repro", json.dumps(payload)],
                          capture_output=True, text=True, timeout=300)
    if proc.returncode < 0:
        case.fail(f"{case.variant}: the process crashed (signal {-proc.returncode}) "
                  f"(MLX shapeless compile over a size-1 last axis)", sample)
    if proc.returncode != 0:
        message = proc.stdout.strip().splitlines()[1:] or [proc.stderr.strip()[-500:]]
        case.fail(" ".join(message), sample)


def run(case, sample, isolated: bool = False):
    if case.variant == "shapeless" and _risky(case, sample) and not isolated:
        return _isolated(case, sample)
    present = [a.name for a in case.spec.arrays if sample.arrays.get(a.name) is not None] + list(case.spec.derived_outputs)
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
                       f"{case.variant} call {i + 1} (shape {shape})", magnitude=case.magnitude(inputs.oracle))
    finally:
        sample.shape = first
