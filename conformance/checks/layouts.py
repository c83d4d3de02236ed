"""Each memory layout (transposed, strided with NaN-filled gaps, stride-0 broadcast, offset,
reversed) for each array argument, asserted before use, vs the oracle."""

from .. import layouts
from ..strategies import samples
from ._common import forward

NAME = "layouts"
EXAMPLES = 0.5


def variants(spec, impl, device, dtype):
    out = []
    for a in spec.arrays:
        for name in layouts.LAYOUTS[1:]:
            # Realisable for some rank in range? (weights of rank 1 cannot be transposed)
            if any(layouts.applicable(name, a.shape_for((3,) * r, spec.default_statics()))
                   for r in range(spec.ranks[0], spec.ranks[1] + 1)):
                out.append(f"{a.name}:{name}")
    return out


def strategy(case):
    arg, name = case.variant.split(":")
    spec = case.spec
    arg_spec = next(a for a in spec.arrays if a.name == arg)
    # The smallest main rank at which this argument can take the layout.
    min_rank = next(r for r in range(spec.ranks[0], spec.ranks[1] + 1)
                    if layouts.applicable(name, arg_spec.shape_for((3,) * r, spec.default_statics())))
    return samples(spec, case.dtype, layout=name, layout_arg=arg, min_rank=min_rank)


def run(case, sample):
    forward(case, sample)
