"""Declarative op specs: what the conformance templates need to know about one op.

One op = one file ``conformance/specs/<op>.py`` defining ``SPEC = OpSpec(...)``; it is found
automatically (``mlxr.conformance.specs.all_specs()``). Copy ``specs/rms_norm.py``.

Implementations are named as lazy ``"module:attr[.attr]"`` strings so a spec can exist before its
fused port does: an unresolvable target is reported "not implemented", never a collection error.

Tolerance rule (PyTorch / FlashAttention style arbitration), elementwise where all are finite::

    |candidate - oracle| <= factor * max|reference - oracle| + atol + rtol * |oracle| [+ mtol * magnitude]

``magnitude`` (optional, ``OpSpec.magnitude``) is a per-element error scale the spec computes
from the oracle's inputs, e.g. ``sqrt(K) * sum_k |x_k * w_k|`` for a K-term dot product: the
rounding error of a sum in any order is bounded by a few eps of it, whatever the reference's own
(order-dependent, sometimes lucky) error is. It applies to forward values (forward,
special_values, thresholds, layouts, compile, vmap); gradients are arbitrated only.

``oracle`` is the reference run in float64 on the CPU, ``reference`` the reference run in the
candidate's dtype on the candidate's device. Non-finite outputs must match the reference's
class (NaN, +Inf, -Inf) elementwise.

Shapes that depend on statics: an argument's ``shape`` may take ``(main, statics)`` instead of
``(main)`` (e.g. a contracted axis that must be a multiple of a drawn ``group_size``); statics
are then drawn before the arrays.

Derived arguments (``Derived``): arrays built from a drawn float array instead of drawn
themselves, e.g. ``mx.quantize`` of a drawn weight gives ``w``, ``scales`` and ``biases`` that
must belong together. They are built once, in the case's dtype, and passed as they are to the
candidate and the reference, and cast to float64 (floating ones; exact) for the oracle; they are
never re-laid-out, batched by vmap or differentiated. See ``specs/quantized_matmul.py``.

``OpSpec.oracle`` (optional, "module:attr") replaces the float64 reference as the oracle of the
forward checks (forward, special values, thresholds, layouts, compile, vmap): it takes the
reference's arguments as float64 CPU arrays and returns float64. Give one more accurate than
float64 (e.g. numpy extended precision) when the float64 reference's own rounding would set
the float64 bound: the reference in float64 is then arbitrated like every other dtype.
Autodiff keeps the float64 reference as its oracle (it must be differentiable by MLX).
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import inspect
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


@functools.lru_cache(maxsize=None)
def _takes_statics(shape: Callable) -> bool:
    try:
        return len(inspect.signature(shape).parameters) == 2
    except (TypeError, ValueError):  # a builtin without a signature: shape(main)
        return False


def _shape_of(shape: Callable, main, statics) -> tuple[int, ...]:
    main = tuple(main)
    return tuple(shape(main, dict(statics or {})) if _takes_statics(shape) else shape(main))


@dataclasses.dataclass(frozen=True)
class Array:
    """An array argument. ``shape`` maps the op's drawn main shape (and the statics, when it
    takes two arguments) to this argument's shape."""

    name: str
    shape: Callable[..., tuple[int, ...]] = tuple
    optional: bool = False  # may be passed as None (drawn both ways)
    differentiable: bool = True

    def shape_for(self, main, statics: dict | None = None) -> tuple[int, ...]:
        return _shape_of(self.shape, main, statics)


@dataclasses.dataclass(frozen=True)
class Derived:
    """Arguments ``outputs`` built by ``build(source, statics)`` (one array each, in order) from a
    drawn float array ``source`` of shape ``shape`` (as Array's) in the dtype case's dtype for
    ``name``; sources draw finite values only. See the module docstring."""

    name: str
    outputs: tuple[str, ...]
    build: Callable[[Any, dict], tuple]
    shape: Callable[..., tuple[int, ...]] = tuple

    def shape_for(self, main, statics: dict | None = None) -> tuple[int, ...]:
        return _shape_of(self.shape, main, statics)


@dataclasses.dataclass(frozen=True)
class Static:
    """A non-array argument drawn from ``values`` (the first value is the shrink target).

    ``smooth`` lists the values usable for finite differences (e.g. eps > 0)."""

    name: str
    values: tuple
    smooth: tuple | None = None


@dataclasses.dataclass(frozen=True)
class Tolerance:
    """See the module docstring: candidate error <= factor * reference error + atol + rtol*|oracle|
    (+ mtol * the spec's magnitude)."""

    atol: float
    rtol: float
    factor: float = 2.0
    mtol: float = 0.0


# Forward tolerances of an op computed in float32 (float64 for float64) through MLX's exp and
# rounded once (softmax, swiglu): MLX's float32 exp (~1e-6 relative) dominates the reference's
# own error; a few ulp of each output dtype plus one subnormal spacing on top.
EXP_ROUNDED_ONCE = {
    "float32": Tolerance(atol=3e-45, rtol=1e-6, factor=2.0),
    "float16": Tolerance(atol=6e-8, rtol=1e-3, factor=2.0),
    "bfloat16": Tolerance(atol=1e-40, rtol=8e-3, factor=2.0),
    "float64": Tolerance(atol=1e-320, rtol=1e-13, factor=2.0),
}


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
    - ``args``: Array, Derived and Static arguments in call order; ``call(fn, **args)`` invokes an
      implementation (default: positional, in order).
    - ``dtypes``: per device ("cpu", "gpu"), dtype cases: a dtype name applied to every array,
      or a mixed case ``"x=float16,weight=float32"`` (unnamed arrays take the first dtype).
    - ``tolerances`` / ``grad_tolerances``: by output dtype name.
    - ``thresholds``: sizes of the last axis where kernels switch paths; each is probed at ±1.
    - ``ranks``: ranks of the main shape drawn.
    - ``kernel``: the kernel name ``mlxr.fused.observe()`` reports for the kit's fused op.
    - ``magnitude``: ``magnitude(oracle_args) -> array`` of the output's shape, the error scale
      that ``Tolerance.mtol`` multiplies (see the module docstring).
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
    magnitude: Callable[[dict], Any] | None = None
    oracle: str | None = None

    # ------------------------------------------------------------------ helpers
    @property
    def arrays(self) -> tuple[Array, ...]:
        return tuple(a for a in self.args if isinstance(a, Array))

    @property
    def statics(self) -> tuple[Static, ...]:
        return tuple(a for a in self.args if isinstance(a, Static))

    @property
    def derived(self) -> tuple[Derived, ...]:
        return tuple(a for a in self.args if isinstance(a, Derived))

    @property
    def derived_outputs(self) -> tuple[str, ...]:
        return tuple(n for d in self.derived for n in d.outputs)

    @property
    def statics_first(self) -> bool:
        """Some shape depends on the statics: they are drawn before the arrays."""
        return any(_takes_statics(a.shape) for a in (*self.arrays, *self.derived))

    def default_statics(self) -> dict:
        return {s.name: s.values[0] for s in self.statics}

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
        names = [n for a in self.args for n in (a.outputs if isinstance(a, Derived) else (a.name,))]
        return fn(*(args[n] for n in names))

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
    names = [a.name for a in (*spec.arrays, *spec.derived)]
    if "=" not in case:
        return {n: case for n in names}
    pairs = dict(p.split("=") for p in case.split(","))
    default = next(iter(pairs.values()))
    return {n: pairs.get(n, default) for n in names}
