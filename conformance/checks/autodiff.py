"""Autodiff: mx.grad and mx.vjp, mx.jvp, the inner-product identity, second order, and central
finite differences in float64 — each vs the float64 oracle, arbitrated by the reference."""

from __future__ import annotations

import mlx.core as mx
import numpy as np
from hypothesis import strategies as st

from ..layouts import to_f64, to_mx
from ..strategies import samples

NAME = "autodiff"
EXAMPLES = 0.5
VARIANTS = ("vjp", "jvp", "inner_product", "second_order", "finite_differences")


def variants(spec, impl, device, dtype):
    if not any(a.differentiable for a in spec.arrays):
        return []
    # Finite differences need float64 end to end: only the float64 dtype case.
    return [v for v in VARIANTS if v != "finite_differences" or dtype == "float64"]


def strategy(case):
    smooth = case.variant == "finite_differences"
    base = samples(case.spec, case.dtype, kind="smooth" if smooth else "finite", nonempty=True,
                   max_elements=4096, statics="smooth" if smooth else "all")
    return st.tuples(base, st.integers(0, 2**16)).map(lambda t: _with_seed(*t))


def _with_seed(sample, seed):
    sample.extra["seed"] = seed
    return sample


def _diff_args(case, sample):
    return [a.name for a in case.spec.arrays if a.differentiable and sample.arrays.get(a.name) is not None]


def _function(case, fn, args, names):
    """fn as a function of the differentiable arrays only."""
    def f(*primals):
        return case.spec.invoke(fn, {**args, **dict(zip(names, primals))})
    return f


def _on(case, device, thunk):
    with mx.stream(mx.Device({"cpu": mx.cpu, "gpu": mx.gpu}[device])):
        out = thunk()
        mx.eval(out)
    return out


def run(case, sample):
    names = _diff_args(case, sample)
    inputs = case.materialize(sample)
    seed = sample.extra["seed"]
    impls = {  # (function, its inputs, device)
        "candidate": (case.fn, inputs.args, case.device),
        "reference": (case.reference_fn, inputs.plain, case.device),
        "oracle": (case.reference_fn, inputs.oracle, "cpu"),
    }
    reference = case.reference(inputs.plain)
    out_dtype = reference.dtype
    cot = np.random.default_rng(seed).standard_normal(reference.shape)
    tangents = {n: np.random.default_rng(seed + 1 + i).standard_normal(inputs.plain[n].shape) for i, n in enumerate(names)}
    RUN[case.variant](case, sample, impls, names, out_dtype, cot, tangents)


def _cast(values: np.ndarray, like: mx.array) -> mx.array:
    return to_mx(values, like.dtype)


def _vjp(case, impl, names, cot):
    fn, args, device = impl
    primals = [args[n] for n in names]
    f = _function(case, fn, args, names)
    out = _on(case, device, lambda: f(*primals))
    _, grads = _on(case, device, lambda: mx.vjp(f, primals, [_cast(cot, out)]))
    return grads


def _grad_of_loss(case, impl, names, cot):
    fn, args, device = impl
    primals = [args[n] for n in names]
    f = _function(case, fn, args, names)
    out = _on(case, device, lambda: f(*primals))
    c = _cast(cot, out)
    loss = lambda *p: (f(*p) * c).astype(mx.float32 if out.dtype != mx.float64 else mx.float64).sum()
    return _as_tuple(_on(case, device, lambda: mx.grad(loss, argnums=list(range(len(names))))(*primals)))


def _as_tuple(grads):
    return (grads,) if isinstance(grads, mx.array) else tuple(grads)


def _jvp(case, impl, names, tangents):
    fn, args, device = impl
    primals = [args[n] for n in names]
    f = _function(case, fn, args, names)
    ts = [_cast(tangents[n], args[n]) for n in names]
    _, out = _on(case, device, lambda: mx.jvp(f, primals, ts))
    return out[0]


def check_vjp(case, sample, impls, names, out_dtype, cot, tangents):
    got = {k: _vjp(case, impls[k], names, cot) for k in impls}
    for i, n in enumerate(names):
        case.judge(got["candidate"][i], got["reference"][i], got["oracle"][i], sample, f"vjp wrt {n}", grad=True)
    grads = {k: _grad_of_loss(case, impls[k], names, cot) for k in impls}
    for i, n in enumerate(names):
        case.judge(grads["candidate"][i], grads["reference"][i], grads["oracle"][i], sample, f"mx.grad wrt {n}", grad=True)


def check_jvp(case, sample, impls, names, out_dtype, cot, tangents):
    got = {k: _jvp(case, impls[k], names, tangents) for k in impls}
    case.judge(got["candidate"], got["reference"], got["oracle"], sample, "jvp", grad=True)


# Unit roundoff of the dtype a gradient is rounded to.
_ROUNDOFF = {mx.float16: 2.0**-11, mx.bfloat16: 2.0**-8, mx.float32: 2.0**-24, mx.float64: 2.0**-53}


def _identity_gap(case, impl, names, cot, tangents):
    """|<t, vjp(c)> - <jvp(t), c>|, the scale of the two sums (float64 numpy), and the sums,
    plus the rounding of each gradient to its argument's dtype where that is narrower than
    the output's (half an ulp of every term of <t, vjp(c)>)."""
    args = impl[1]
    grads = _vjp(case, impl, names, cot)
    jv = _jvp(case, impl, names, tangents)
    lhs_terms = [tangents[n] * to_f64(g) for n, g in zip(names, grads)]
    lhs = sum(float(t.sum()) for t in lhs_terms)
    rhs = float((to_f64(jv) * cot).sum())
    scale = sum(float(np.abs(t).sum()) for t in lhs_terms) + float(np.abs(to_f64(jv) * cot).sum())
    rounding = sum(_ROUNDOFF[args[n].dtype] * float(np.abs(t).sum()) for n, t in zip(names, lhs_terms)
                   if _ROUNDOFF[args[n].dtype] > _ROUNDOFF[jv.dtype])
    return abs(lhs - rhs), scale, lhs, rhs, rounding


def check_inner_product(case, sample, impls, names, out_dtype, cot, tangents):
    # Tangents and cotangent are rounded to the dtype the implementation sees first.
    fn, args, _ = impls["candidate"]
    tangents = {n: to_f64(_cast(t, args[n])) for n, t in tangents.items()}
    cot = to_f64(to_mx(cot, out_dtype))
    gap_c, scale, lhs, rhs, rounding = _identity_gap(case, impls["candidate"], names, cot, tangents)
    gap_r, _, _, _, _ = _identity_gap(case, impls["reference"], names, cot, tangents)
    if np.isnan(gap_c) and np.isnan(gap_r):  # undefined for the reference too (e.g. 0/0 at eps = 0)
        return
    tol = case.tolerance(out_dtype, grad=True)
    bound = tol.factor * gap_r + tol.atol + tol.rtol * scale + rounding
    if not np.isfinite(gap_c) or gap_c > bound:
        case.fail(f"inner-product identity: <t, vjp(c)> = {lhs!r} but <jvp(t), c> = {rhs!r}; gap {gap_c:.3g} > "
                  f"bound {bound:.3g} (reference gap {gap_r:.3g}, scale {scale:.3g}, rounding of gradients to "
                  f"narrower arguments {rounding:.3g})", sample)


def _second(case, impl, names, cot, vec):
    """Hessian-vector product of <f, c> wrt the first differentiable argument."""
    fn, args, device = impl
    f = _function(case, fn, args, names)
    primals = [args[n] for n in names]
    out = _on(case, device, lambda: f(*primals))
    c = _cast(cot, out)
    v = _cast(vec, primals[0])
    acc = mx.float64 if out.dtype == mx.float64 else mx.float32

    def loss(x0):
        return (f(x0, *primals[1:]) * c).astype(acc).sum()

    def directional(x0):
        return (mx.grad(loss)(x0) * v).astype(acc).sum()

    return _on(case, device, lambda: mx.grad(directional)(primals[0]))


def check_second_order(case, sample, impls, names, out_dtype, cot, tangents):
    vec = tangents[names[0]]
    got = {k: _second(case, impls[k], names, cot, vec) for k in impls}
    case.judge(got["candidate"], got["reference"], got["oracle"], sample, f"second order wrt {names[0]}", grad=True)


def check_finite_differences(case, sample, impls, names, out_dtype, cot, tangents):
    # Directional derivative of L = <f, c> along t, by central differences, vs <grad L, t>;
    # the error of a central difference is O(h^2) (truncation) + O(eps/h) (round-off).
    fn, args, device = impls["candidate"]
    f = _function(case, fn, args, names)
    primals = [args[n] for n in names]
    if any(p.dtype != mx.float64 for p in primals):
        case.fail("finite differences need float64 inputs", sample)
    c = mx.array(cot, dtype=mx.float64)
    loss = lambda *p: (f(*p) * c).sum()
    grads = _as_tuple(_on(case, device, lambda: mx.grad(loss, argnums=list(range(len(names))))(*primals)))
    analytic = sum(float((to_f64(g) * tangents[n]).sum()) for g, n in zip(grads, names))
    h = 1e-6
    shifted = lambda s: float(_on(case, device, lambda: loss(*[p + s * h * mx.array(tangents[n], dtype=mx.float64)
                                                              for p, n in zip(primals, names)])).item())
    numeric = (shifted(1.0) - shifted(-1.0)) / (2 * h)
    scale = abs(analytic) + abs(numeric) + float(np.abs(cot).sum()) * 1e-3
    if not abs(analytic - numeric) <= 1e-5 * scale:
        case.fail(f"finite differences: <grad L, t> = {analytic!r}, central difference {numeric!r} (h={h})", sample)


RUN = {
    "vjp": check_vjp,
    "jvp": check_jvp,
    "inner_product": check_inner_product,
    "second_order": check_second_order,
    "finite_differences": check_finite_differences,
}
