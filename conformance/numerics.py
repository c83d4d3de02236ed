"""Oracle arbitration and error metrics (absolute, relative, ULP of the candidate's dtype)."""

from __future__ import annotations

import dataclasses

import mlx.core as mx
import numpy as np

from .layouts import to_f64
from .spec import Tolerance

# Mantissa bits and minimum normal exponent per dtype: ulp(v) = 2**(max(e(v), emin) - bits).
_FORMAT = {
    "float32": (23, -126),
    "float16": (10, -14),
    "bfloat16": (7, -126),
    "float64": (52, -1022),
}


def dtype_name(dtype: mx.Dtype) -> str:
    return str(dtype).rsplit(".", 1)[-1]


def ulp(values: np.ndarray, dtype: str) -> np.ndarray:
    """Spacing of ``dtype`` at each value (subnormal spacing below the normal range)."""
    bits, emin = _FORMAT[dtype]
    _, exp = np.frexp(np.abs(values))
    exp = np.where(values == 0, emin + 1, exp)  # frexp(0) has exponent 0: use the subnormal spacing
    return np.ldexp(1.0, np.maximum(exp - 1, emin) - bits)


def classes(a: np.ndarray) -> np.ndarray:
    """0 finite, 1 NaN, 2 +Inf, 3 -Inf."""
    return np.where(np.isnan(a), 1, np.where(a == np.inf, 2, np.where(a == -np.inf, 3, 0)))


@dataclasses.dataclass
class Errors:
    """Worst candidate-vs-oracle errors over the compared (finite) elements."""

    abs: float = 0.0
    rel: float = 0.0
    ulp: float = 0.0
    tol_used: float = 0.0  # max |c - o| / bound: the share of the tolerance used (<= 1 passes)

    def merge(self, other: "Errors") -> None:
        for field in ("abs", "rel", "ulp", "tol_used"):
            setattr(self, field, max(getattr(self, field), getattr(other, field)))

    def as_dict(self) -> dict:
        return {"abs": self.abs, "rel": self.rel, "ulp": self.ulp, "tol_used": self.tol_used}


@dataclasses.dataclass
class Verdict:
    ok: bool
    errors: Errors
    message: str = ""


def _describe(index, shape) -> str:
    return str(tuple(int(i) for i in np.unravel_index(index, shape))) if shape else "()"


def arbitrate(candidate: mx.array, reference: mx.array, oracle: mx.array, tol: Tolerance, what: str = "output",
              magnitude: mx.array | None = None) -> Verdict:
    """Judge ``candidate`` against the float64 ``oracle``, arbitrated by ``reference``'s own error.

    Fails on a dtype or shape different from the reference's, a non-finite class (NaN/±Inf)
    different from both the reference's and the oracle's (rounded to the output dtype: where the
    reference overflows in an intermediate sum and the true value is finite, a finite candidate
    is right; where ``magnitude``, which bounds every partial sum, reaches the dtype's largest
    value, any class is accepted: a sum in another order may overflow on the way), or an element with
    ``|c - o| > factor * max|r - o| + atol + rtol * |o| + mtol * magnitude`` (``max|r - o|`` over
    elements where the reference is finite; elements where the oracle or the candidate is
    non-finite are judged by class only).
    """
    if not isinstance(candidate, mx.array):
        return Verdict(False, Errors(), f"{what}: expected an mlx array, got {type(candidate).__name__}")
    if candidate.dtype != reference.dtype:
        return Verdict(False, Errors(), f"{what}: dtype {dtype_name(candidate.dtype)}, reference gives {dtype_name(reference.dtype)}")
    if candidate.shape != reference.shape:
        return Verdict(False, Errors(), f"{what}: shape {tuple(candidate.shape)}, reference gives {tuple(reference.shape)}")
    c, r, o = to_f64(candidate).ravel(), to_f64(reference).ravel(), to_f64(oracle).ravel()
    shape = tuple(candidate.shape)
    cc, rc = classes(c), classes(r)
    m = np.zeros_like(o) if magnitude is None else np.broadcast_to(to_f64(magnitude), shape).ravel()
    mismatch = np.flatnonzero(cc != rc)
    if mismatch.size:
        oc = classes(to_f64(oracle.astype(candidate.dtype)).ravel()[mismatch])
        # Where the magnitude (which bounds every partial sum) overflows the dtype, a sum taken
        # in another order may overflow on the way to a finite result: any class is allowed.
        overflowable = m[mismatch] >= float(mx.finfo(candidate.dtype).max)
        mismatch = mismatch[(cc[mismatch] != oc) & ~overflowable]
    if mismatch.size:
        i = mismatch[0]
        return Verdict(False, Errors(), f"{what}: non-finite mismatch at {_describe(i, shape)}: candidate {c[i]}, "
                       f"reference {r[i]}, oracle {o[i]} ({mismatch.size} element(s))")
    judged = (cc == 0) & np.isfinite(o) & np.isfinite(m)
    if not judged.any():
        return Verdict(True, Errors())
    ref_finite = rc[judged] == 0
    c, r, o, m = c[judged], r[judged], o[judged], m[judged]
    err_c, err_r = np.abs(c - o), np.where(ref_finite, np.abs(r - o), 0.0)
    dt = dtype_name(candidate.dtype)
    bound = tol.factor * err_r.max() + tol.atol + tol.rtol * np.abs(o) + tol.mtol * m
    errors = Errors(
        abs=float(err_c.max()),
        rel=float((err_c / np.maximum(np.abs(o), np.finfo(np.float64).tiny)).max()),
        ulp=float((err_c / ulp(o, dt)).max()),
        tol_used=float((err_c / np.maximum(bound, np.finfo(np.float64).tiny)).max()),
    )
    bad = np.flatnonzero(err_c > bound)
    if bad.size:
        i = bad[np.argmax((err_c - bound)[bad])]
        where = _describe(np.flatnonzero(judged)[i], shape)
        return Verdict(False, errors, f"{what}: {bad.size} element(s) out of tolerance; worst at {where}: "
                       f"candidate {c[i]!r}, oracle {o[i]!r}, reference {r[i]!r}, |c-o| {err_c[i]:.3g} > "
                       f"bound {bound[i]:.3g} (= {tol.factor} * max|r-o| {err_r.max():.3g} + {tol.atol} + {tol.rtol} * |o|"
                       + (f" + {tol.mtol} * magnitude {m[i]:.3g})" if magnitude is not None else ")"))
    return Verdict(True, errors)


def bitwise_equal(a: mx.array, b: mx.array) -> bool:
    """Same dtype, shape and bits (NaN payloads included)."""
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    view = {1: mx.uint8, 2: mx.uint16, 4: mx.uint32, 8: mx.uint64}[a.dtype.size]
    return bool(np.array_equal(np.array(a.view(view)), np.array(b.view(view))))
