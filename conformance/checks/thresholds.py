"""Every kernel dispatch threshold of the last axis, probed at -1, 0, +1 (and length 1): one
test per length, so each is exercised whatever hypothesis draws elsewhere."""

from ..strategies import samples
from ._common import forward

NAME = "thresholds"
EXAMPLES = 0.25


def variants(spec, impl, device, dtype):
    return [f"n={n}" for n in spec.probes()]


def strategy(case):
    n = int(case.variant.split("=")[1])
    return samples(case.spec, case.dtype, last=n, nonempty=True, require=tuple(a.name for a in case.spec.arrays))


def run(case, sample):
    forward(case, sample)
