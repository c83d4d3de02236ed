"""Inputs (and the buffers their views live in) are never mutated, and repeated calls give
bitwise identical outputs. Every array draws a random layout."""

from __future__ import annotations

import mlx.core as mx
import numpy as np

from ..layouts import raw
from ..numerics import bitwise_equal
from ..strategies import samples

NAME = "purity"
EXAMPLES = 0.5


def variants(spec, impl, device, dtype):
    return ["no_mutation", "deterministic"]


def strategy(case):
    return samples(case.spec, case.dtype, layout="any", kind="special" if case.variant == "deterministic" else "finite")


def run(case, sample):
    inputs = case.materialize(sample)
    if case.variant == "no_mutation":
        before = {n: raw(p).copy() for n, p in inputs.parents.items()}
        case.candidate(inputs.args)
        mx.synchronize()
        for n, p in inputs.parents.items():
            if not np.array_equal(before[n].view(np.uint8), raw(p).view(np.uint8)):
                case.fail(f"argument {n} was modified by the call", sample)
        return
    first = case.candidate(inputs.args)
    for attempt in range(2):
        again = case.candidate(inputs.args)
        if not isinstance(first, mx.array) or not bitwise_equal(first, again):
            case.fail(f"call {attempt + 2} differs bitwise from call 1", sample)
