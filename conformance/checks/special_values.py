"""NaN, ±Inf, denormals, all-zero rows, tiny and huge magnitudes: non-finite outputs must match
the reference's class elementwise, finite ones the oracle (arbitrated)."""

from ..strategies import samples
from ._common import forward

NAME = "special_values"
EXAMPLES = 1.5


def variants(spec, impl, device, dtype):
    return [None]


def strategy(case):
    return samples(case.spec, case.dtype, kind="special")


def run(case, sample):
    forward(case, sample)
