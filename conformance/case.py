"""One test case: an op's spec × an implementation × a device × a dtype case × a check.

Holds what the check functions need: the resolved implementation, the reference and oracle,
input materialisation, running hypothesis with the selected profile, and what gets recorded
(example counts, worst errors, the failing example and its one-line reproduction).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import shlex

import mlx.core as mx

from . import layouts
from .devices import mlx_device
from .numerics import Errors, Verdict, arbitrate, dtype_name
from .spec import OpSpec, Tolerance, dtype_case, resolve
from .strategies import Sample, values


class CheckFailure(AssertionError):
    """A candidate failed a check on a concrete example (carried for the results file)."""

    def __init__(self, message: str, case: "Case | None" = None, sample: Sample | None = None):
        self.reason = message
        self.example = sample.to_dict() if sample is not None else None
        self.repro = case.repro(sample) if case is not None and sample is not None else None
        text = message
        if self.example is not None:
            text += f"\n  example: {json.dumps(self.example)}"
        if self.repro:
            text += f"\n  reproduce: {self.repro}"
        super().__init__(text)


@dataclasses.dataclass
class Record:
    examples: int = 0
    errors: Errors = dataclasses.field(default_factory=Errors)
    measured: bool = False  # errors were measured at least once

    def add(self, errors: Errors) -> None:
        self.errors.merge(errors)
        self.measured = True


@dataclasses.dataclass
class Inputs:
    args: dict  # what the candidate receives (laid-out views, None, statics)
    plain: dict  # contiguous arrays in the same dtypes (the reference's inputs)
    oracle: dict  # float64 arrays (the oracle's inputs)
    parents: dict  # buffers the views live in




@dataclasses.dataclass
class Case:
    spec: OpSpec
    impl: str  # fused / native / reference / candidate
    target: str  # module:attr
    device: str  # cpu / gpu / metal-sim (mlxr.conformance.devices)
    dtype: str  # dtype case name
    check: str
    variant: str | None = None
    profile: str = "ci"
    expected_failure: bool = False  # declared XFail: examples are not shrunk
    spec_modules: tuple = ()  # out-of-tree spec modules (--spec), for the reproduction line
    record: Record = dataclasses.field(default_factory=Record)

    # ---------------------------------------------------------------- implementations
    @functools.cached_property
    def fn(self):
        return resolve(self.target)

    @functools.cached_property
    def reference_fn(self):
        return resolve(self.spec.reference)

    @functools.cached_property
    def oracle_fn(self):
        """The forward oracle: ``OpSpec.oracle`` if given, else the reference (run in float64)."""
        return resolve(self.spec.oracle or self.spec.reference)

    @property
    def stream(self) -> mx.Device:
        return mlx_device(self.device)

    def call(self, fn, args: dict, device: str | None = None):
        """Run ``fn`` on this case's device (or ``device``) and evaluate the result."""
        with mx.stream(mlx_device(device or self.device)):
            out = self.spec.invoke(fn, args)
            if isinstance(out, mx.array):
                mx.eval(out)
        return out

    def candidate(self, args: dict):
        return self.call(self.fn, args)

    def reference(self, args: dict):
        return self.call(self.reference_fn, args)

    def oracle(self, args: dict):
        return self.call(self.oracle_fn, args, device="cpu")

    # ---------------------------------------------------------------- inputs
    def materialize(self, sample: Sample, shapes: dict | None = None) -> Inputs:
        """Arrays for ``sample``; ``shapes`` overrides argument shapes (vmap's batched args)."""
        args, plain, oracle, parents = dict(sample.statics), dict(sample.statics), dict(sample.statics), {}
        for a in self.spec.arrays:
            recipe = sample.arrays.get(a.name)
            if recipe is None:
                args[a.name] = plain[a.name] = oracle[a.name] = None
                continue
            shape = (shapes or {}).get(a.name, a.shape_for(sample.shape, sample.statics))
            dtype = getattr(mx, recipe.dtype)
            built = layouts.build(recipe.layout, values(recipe.values, shape, recipe.dtype), dtype, recipe.params)
            args[a.name], parents[a.name] = built.view, built.parent
            plain[a.name] = layouts.to_mx(built.values, dtype)
            oracle[a.name] = layouts.to_mx(built.values, mx.float64)
        for d in self.spec.derived:
            recipe = sample.arrays[d.name]
            source = layouts.to_mx(values(recipe.values, d.shape_for(sample.shape, sample.statics), recipe.dtype),
                                   getattr(mx, recipe.dtype))
            with mx.stream(mx.cpu):
                built = d.build(source, dict(sample.statics))
                mx.eval(built)
            for name, a in zip(d.outputs, built, strict=True):
                args[name] = plain[name] = parents[name] = a
                oracle[name] = layouts.to_mx(layouts.to_f64(a), mx.float64) if mx.issubdtype(a.dtype, mx.floating) else a
        return Inputs(args, plain, oracle, parents)

    # ---------------------------------------------------------------- judging
    def tolerance(self, out_dtype: mx.Dtype, grad: bool = False) -> Tolerance:
        table = self.spec.grad_tolerances if grad else self.spec.tolerances
        return table[dtype_name(out_dtype)]

    def magnitude(self, oracle_args: dict) -> mx.array | None:
        """The spec's error scale of the output for these (float64) inputs, if it has one."""
        if self.spec.magnitude is None:
            return None
        with mx.stream(mx.cpu):
            m = self.spec.magnitude(oracle_args)
            mx.eval(m)
        return m

    def judge(self, candidate, reference: mx.array, oracle: mx.array, sample: Sample, what: str = "output",
              grad: bool = False, magnitude: mx.array | None = None) -> Verdict:
        """Arbitrate and record; raise CheckFailure when out of tolerance."""
        verdict = arbitrate(candidate, reference, oracle, self.tolerance(reference.dtype, grad), what, magnitude)
        if verdict.errors is not None and verdict.ok:
            self.record.add(verdict.errors)
        if not verdict.ok:
            self.record.add(verdict.errors)
            raise CheckFailure(verdict.message, self, sample)
        return verdict

    def fail(self, message: str, sample: Sample | None) -> None:
        raise CheckFailure(message, self, sample)

    # ---------------------------------------------------------------- reporting
    def identity(self) -> dict:
        return {"op": self.spec.name, "impl": self.impl, "target": self.target, "device": self.device,
                "dtype": self.dtype, "check": self.check, "variant": self.variant}

    def repro(self, sample: Sample) -> str:
        payload = {**self.identity(), "sample": sample.to_dict()}
        if self.spec_modules:
            payload["spec_modules"] = list(self.spec_modules)
        return f"python -m mlxr.conformance.repro {shlex.quote(json.dumps(payload, separators=(',', ':')))}"

    def dtypes(self) -> dict[str, str]:
        return dtype_case(self.dtype, self.spec)
