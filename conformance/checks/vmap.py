"""mx.vmap over every array argument and axis (batch sizes 0, 1 and more) vs a per-slice loop:
the vmapped candidate is judged against the stacked per-slice oracle, arbitrated by the
stacked per-slice reference."""

from __future__ import annotations

import mlx.core as mx
from hypothesis import strategies as st

from ..strategies import samples

NAME = "vmap"
EXAMPLES = 0.75


def variants(spec, impl, device, dtype):
    return [a.name for a in spec.arrays]  # the argument that is always batched


@st.composite
def _strategy(draw, case):
    spec = case.spec
    sample = draw(samples(spec, case.dtype, require=(case.variant,), max_elements=4096))
    batched = {case.variant}
    for a in spec.arrays:
        if a.name != case.variant and sample.arrays.get(a.name) is not None and draw(st.booleans()):
            batched.add(a.name)
    axes = {}
    for name in sorted(batched):
        ndim = len(next(a for a in spec.arrays if a.name == name).shape_for(sample.shape, sample.statics))
        axes[name] = draw(st.integers(0, ndim))
    sample.extra = {"batch": draw(st.sampled_from((3, 1, 0))), "in_axes": axes}
    return sample


def strategy(case):
    return _strategy(case)


def _batched_inputs(case, sample):
    """Per-argument arrays with the batch axis inserted, in the three dtypes."""
    batch, axes = sample.extra["batch"], sample.extra["in_axes"]
    shapes = {}
    for a in case.spec.arrays:
        if a.name in axes:
            shape = list(a.shape_for(sample.shape, sample.statics))
            shape.insert(axes[a.name], batch)
            shapes[a.name] = tuple(shape)
    return case.materialize(sample, shapes=shapes)


def _vmapped(case, fn, args, axes, device):
    names = [n for n in axes]

    def f(*batched):
        return case.spec.invoke(fn, {**args, **dict(zip(names, batched))})

    with mx.stream(mx.Device({"cpu": mx.cpu, "gpu": mx.gpu}[device])):
        out = mx.vmap(f, in_axes=tuple(axes[n] for n in names))(*[args[n] for n in names])
        mx.eval(out)
    return out


def _loop(case, fn, args, axes, batch, device):
    """The per-slice loop; batch size 0 gives an empty stack of the single-slice shape."""
    # Slicing and stacking on the loop's own device: float64 oracle inputs cannot touch a GPU.
    with mx.stream(mx.Device({"cpu": mx.cpu, "gpu": mx.gpu}[device])):
        outs = []
        for i in range(batch):
            # Basic indexing, not mx.take: take refuses zero-size arrays.
            sliced = {**args, **{n: args[n][(slice(None),) * ax + (i,)] for n, ax in axes.items()}}
            outs.append(case.call(fn, sliced, device=device))
        if outs:
            return mx.stack(outs)
        template = {**args, **{n: mx.zeros([d for j, d in enumerate(args[n].shape) if j != ax], dtype=args[n].dtype)
                               for n, ax in axes.items()}}
        one = case.call(fn, template, device=device)
        return mx.zeros((0, *one.shape), dtype=one.dtype)


def run(case, sample):
    axes, batch = sample.extra["in_axes"], sample.extra["batch"]
    inputs = _batched_inputs(case, sample)
    got = _vmapped(case, case.fn, inputs.args, axes, case.device)
    reference = _loop(case, case.reference_fn, inputs.plain, axes, batch, case.device)
    oracle = _loop(case, case.oracle_fn, inputs.oracle, axes, batch, "cpu")
    magnitude = None
    if case.spec.magnitude is not None and batch:
        with mx.stream(mx.cpu):  # float64 slices: the GPU has no float64
            magnitude = mx.stack([case.magnitude({**inputs.oracle, **{n: inputs.oracle[n][(slice(None),) * ax + (i,)]
                                                                    for n, ax in axes.items()}}) for i in range(batch)])
    case.judge(got, reference, oracle, sample, f"vmap(in_axes={axes}, batch={batch})", magnitude=magnitude)
