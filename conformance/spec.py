"""Declarative op specs: what the conformance templates need to know about one op.

One op = one file ``conformance/specs/<op>.py`` defining ``SPEC = OpSpec(...)``; it is found
automatically (``mlxr.conformance.specs.all_specs()``). Copy ``specs/rms_norm.py``.

Implementations are named as lazy ``"module:attr[.attr]"`` strings so a spec can exist before its
fused port does: an unresolvable target is reported "not implemented", never a collection error.

Tolerance rule (PyTorch / FlashAttention style arbitration), elementwise where all are finite::

    |candidate - oracle| <= factor * max|reference - oracle| + atol + rtol * |oracle|

``oracle`` is the reference run in float64 on the CPU, ``reference`` the reference run in the
candidate's dtype on the candidate's device. Non-finite outputs must match the reference's
class (NaN, +Inf, -Inf) elementwise.

``OpSpec.oracle`` (optional, "module:attr") replaces the float64 reference as the oracle of the
forward checks (forward, special values, thresholds, layouts, compile, vmap): it takes the
reference's arguments as float64 CPU arrays and returns float64. Give one more accurate than
float64 (e.g. numpy extended precision) when the float64 reference's own rounding would set
the float64 bound: the reference in float64 is then arbitrated like every other dtype.
Autodiff keeps the float64 reference as its oracle (it must be differentiable by MLX).
"""

from __future__ import annotations

import dataclasses
import importlib
from typing import Any, Callable

FLOAT_DTYPES = ("float32", "float16", "bfloat16", "float64")


class NotImplementedTarget(Exception):
    """A ``module:attr`` target that does not resolve (the op is not ported yet)."""


def resolve(target: str) -> Callable:
    """Import ``"pkg.mod:attr.sub"`` and return the attribute; NotImplementedTarget if absent."""
    module_name, _, attr = target.partition(":")
    if not module_name or not attr:
        raise ValueError(f"implementation target must look like 'module:attr', got {target!r}")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as e:
        raise NotImplementedTarget(f"{target} is not implemented ({type(e).__name__}: {e})") from e
    return obj


@dataclasses.dataclass(frozen=True)
class Array:
    """An array argument. ``shape`` maps the op's drawn main shape to this argument's shape."""

    name: str
    shape: Callable[[tuple[int, ...]], tuple[int, ...]] = tuple
    optional: bool = False  # may be passed as None (drawn both ways)
    differentiable: bool = True


@dataclasses.dataclass(frozen=True)
class Static:
    """A non-array argument drawn from ``values`` (the first value is the shrink target).

    ``smooth`` lists the values usable for finite differences (e.g. eps > 0)."""

    name: str
    values: tuple
    smooth: tuple | None = None


@dataclasses.dataclass(frozen=True)
class Tolerance:
    """See the module docstring: candidate error <= factor * reference error + atol + rtol*|oracle|."""

    atol: float
    rtol: float
    factor: float = 2.0


@dataclasses.dataclass(frozen=True)
class ErrorCase:
    """Bad input: ``build()`` returns the call's arguments by name; the call must raise ``raises``
    with a message matching the regex ``match``."""

    name: str
    build: Callable[[], dict]
    raises: type[BaseException]
    match: str


@dataclasses.dataclass(frozen=True)
class XFail:
    """A known failure. Fields left None match anything; ``reason`` is mandatory.

    An XFail entry that passes is reported as a failure (XPASS): fix the spec when a bug is fixed."""

    reason: str
    check: str | tuple[str, ...] | None = None  # one check or several
    impl: str | None = None  # "fused", "native", "reference", "candidate" or a module:attr target
    device: str | None = None
    dtype: str | None = None
    variant: str | None = None  # layout, error case, probe... (the test id's last part)

    def __post_init__(self):
        if not self.reason or not self.reason.strip():
            raise ValueError("every XFail needs a reason")

    def matches(self, check, impl, target, device, dtype, variant) -> bool:
        return (
            (self.check is None or check in ((self.check,) if isinstance(self.check, str) else self.check))
            and (self.impl is None or self.impl in (impl, target))
            and (self.device is None or self.device == device)
            and (self.dtype is None or self.dtype == dtype)
            and (self.variant is None or self.variant == variant)
        )


@dataclasses.dataclass(frozen=True)
class OpSpec:
    """Everything the generic checks need to certify implementations of one op.

    - ``reference`` / ``fused`` / ``native``: "module:attr" targets (native may be None).
    - ``args``: Array and Static arguments in call order; ``call(fn, **args)`` invokes an
      implementation (default: positional, in order).
    - ``dtypes``: per device ("cpu", "gpu"), dtype cases: a dtype name applied to every array,
      or a mixed case ``"x=float16,weight=float32"`` (unnamed arrays take the first dtype).
    - ``tolerances`` / ``grad_tolerances``: by output dtype name.
    - ``thresholds``: sizes of the last axis where kernels switch paths; each is probed at ±1.
    - ``ranks``: ranks of the main shape drawn.
    - ``kernel``: the kernel name ``mlxr.fused.observe()`` reports for the kit's fused op.
    - ``oracle``: "module:attr" of a forward oracle replacing the float64 reference (see the
      module docstring); None = the reference run in float64.
    """

    name: str
    reference: str
    fused: str
    args: tuple
    dtypes: dict[str, tuple[str, ...]]
    tolerances: dict[str, Tolerance]
    grad_tolerances: dict[str, Tolerance]
    native: str | None = None
    call: Callable | None = None
    thresholds: tuple[int, ...] = ()
    ranks: tuple[int, int] = (1, 4)
    max_elements: int = 1 << 15
    kernel: str | None = None
    # The call derives statics from the last axis (rope: dims), so a shapeless-compiled call
    # may only vary the other axes.
    shape_bound_last_axis: bool = False
    errors: tuple[ErrorCase, ...] = ()
    xfails: tuple[XFail, ...] = ()
    oracle: str | None = None

    # ------------------------------------------------------------------ helpers
    @property
    def arrays(self) -> tuple[Array, ...]:
        return tuple(a for a in self.args if isinstance(a, Array))

    @property
    def statics(self) -> tuple[Static, ...]:
        return tuple(a for a in self.args if isinstance(a, Static))

    def target(self, impl: str) -> str | None:
        """The module:attr of "fused" / "native" / "reference", else ``impl`` itself."""
        return {"fused": self.fused, "native": self.native, "reference": self.reference}.get(impl, impl)

    def label(self, target: str) -> str:
        """The role of a target: fused / native / reference, or "candidate"."""
        for role in ("fused", "native", "reference"):
            if target == self.target(role):
                return role
        return "candidate"

    def invoke(self, fn: Callable, args: dict):
        """Call an implementation with the arguments by name."""
        if self.call is not None:
            return self.call(fn, **args)
        return fn(*(args[a.name] for a in self.args))

    def probes(self) -> tuple[int, ...]:
        """Last-axis sizes worth testing: 1 and every threshold ±1."""
        sizes = {1}
        for t in self.thresholds:
            sizes.update(s for s in (t - 1, t, t + 1) if s >= 1)
        return tuple(sorted(sizes))

    def xfail_reason(self, check, impl, target, device, dtype, variant) -> str | None:
        for x in self.xfails:
            if x.matches(check, impl, target, device, dtype, variant):
                return x.reason
        return None


def dtype_case(case: str, spec: OpSpec) -> dict[str, str]:
    """Dtype name per array argument for a dtype case ("float16" or "x=float16,weight=float32")."""
    if "=" not in case:
        return {a.name: case for a in spec.arrays}
    pairs = dict(p.split("=") for p in case.split(","))
    default = next(iter(pairs.values()))
    return {a.name: pairs.get(a.name, default) for a in spec.arrays}
