"""Forward values vs the float64 oracle (ordinary finite inputs, every shape family),
including output dtype and shape."""

from ..strategies import samples
from ._common import forward

NAME = "forward"
EXAMPLES = 1.0


def variants(spec, impl, device, dtype):
    return [None]


def strategy(case):
    return samples(case.spec, case.dtype)


def run(case, sample):
    forward(case, sample)
