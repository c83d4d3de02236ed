"""Hypothesis strategies drawing compact, JSON-serialisable input *recipes*.

Hypothesis draws shapes, value distributions, magnitudes, special values, layouts and seeds;
the arrays themselves come from numpy's seeded generator (``values``). Shrinking therefore works
on what matters (smaller shapes, contiguous layout, no specials, seed 0) and a failing example
is a one-line recipe (``Sample.to_dict``) that ``python -m mlxr.conformance.repro`` replays.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
from hypothesis import assume
from hypothesis import strategies as st

from . import layouts
from .spec import OpSpec, dtype_case

# Magnitude exponents (values are scaled by 2**exp): ordinary, and near each dtype's limits.
_FINITE_EXPS = (-4, 4)
_TINY_EXPS = {"float32": (-149, -120), "float16": (-24, -12), "bfloat16": (-133, -120), "float64": (-1074, -1000)}
_HUGE_EXPS = {"float32": (60, 127), "float16": (6, 15), "bfloat16": (60, 127), "float64": (500, 1023)}
DISTRIBUTIONS = ("normal", "uniform", "positive")
SPECIALS = ("none", "nan", "inf", "-inf", "mixed", "zero_rows", "denormal")


@dataclasses.dataclass
class ValueRecipe:
    dist: str = "normal"  # normal (both signs), uniform [-1, 1), positive [0.5, 2)
    exp: int = 0  # values are multiplied by 2**exp
    special: str = "none"  # SPECIALS: planted at `count` random positions (or rows)
    count: int = 1
    seed: int = 0


@dataclasses.dataclass
class ArgRecipe:
    dtype: str
    values: ValueRecipe
    layout: str = "contiguous"
    params: dict = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class Sample:
    """One drawn input: main shape, per-array recipes (None = argument passed as None), statics,
    and check-specific extras (vmap axes, second shape, ...)."""

    shape: tuple
    arrays: dict
    statics: dict
    extra: dict = dataclasses.field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "shape": list(self.shape),
            "arrays": {k: None if v is None else dataclasses.asdict(v) for k, v in self.arrays.items()},
            "statics": self.statics,
            "extra": self.extra,
        }

    @classmethod
    def from_dict(cls, d: dict) -> "Sample":
        arrays = {}
        for k, v in d["arrays"].items():
            arrays[k] = None if v is None else ArgRecipe(v["dtype"], ValueRecipe(**v["values"]), v["layout"], v["params"])
        return cls(tuple(d["shape"]), arrays, dict(d["statics"]), dict(d.get("extra", {})))


def values(recipe: ValueRecipe, shape: tuple, dtype: str) -> np.ndarray:
    """Float64 values for ``shape`` from ``recipe`` (rounded to the dtype later, by MLX)."""
    rng = np.random.default_rng(recipe.seed)
    if recipe.dist == "normal":
        v = rng.standard_normal(shape)
    elif recipe.dist == "uniform":
        v = rng.uniform(-1.0, 1.0, shape)
    else:
        v = rng.uniform(0.5, 2.0, shape)
    v = np.ldexp(v, recipe.exp)
    n = v.size
    if n == 0 or recipe.special == "none":
        return v
    flat = v.reshape(-1)
    if recipe.special == "zero_rows":
        rows = v.reshape(-1, shape[-1]) if v.ndim else flat.reshape(1, 1)
        rows[rng.choice(rows.shape[0], size=min(recipe.count, rows.shape[0]), replace=False)] = 0.0
        return v
    at = rng.choice(n, size=min(recipe.count, n), replace=False)
    if recipe.special == "denormal":
        tiny = np.ldexp(1.0, _TINY_EXPS[dtype][0] + 2)
        flat[at] = rng.choice([-3.0, -1.0, 1.0, 2.0], size=at.size) * tiny
    elif recipe.special == "mixed":
        flat[at] = rng.choice([np.nan, np.inf, -np.inf], size=at.size)
    else:
        flat[at] = {"nan": np.nan, "inf": np.inf, "-inf": -np.inf}[recipe.special]
    return v


def value_recipes(dtype: str, kind: str = "finite") -> st.SearchStrategy[ValueRecipe]:
    """kind: "finite" (ordinary magnitudes), "special" (NaN/Inf/zero rows/denormals, tiny and huge
    magnitudes), "smooth" (finite, away from zero: finite differences)."""
    seeds = st.integers(0, 2**16)
    if kind == "smooth":
        return st.builds(ValueRecipe, dist=st.just("positive"), exp=st.integers(-1, 1), seed=seeds)
    if kind == "finite":
        return st.builds(ValueRecipe, dist=st.sampled_from(DISTRIBUTIONS), exp=st.integers(*_FINITE_EXPS), seed=seeds)
    exps = st.one_of(st.integers(*_FINITE_EXPS), st.integers(*_TINY_EXPS[dtype]), st.integers(*_HUGE_EXPS[dtype]))
    return st.builds(ValueRecipe, dist=st.sampled_from(DISTRIBUTIONS), exp=exps,
                     special=st.sampled_from(SPECIALS), count=st.integers(1, 4), seed=seeds)


@st.composite
def main_shapes(draw, spec: OpSpec, last: int | None = None, nonempty: bool = False, max_elements: int | None = None,
                min_rank: int = 1, min_dim: int = 1):
    """Main shapes, rank in ``spec.ranks``: generic; many rows × short; few rows × long; zero-size.

    ``last`` pins the last axis (threshold probes); ``min_dim`` bounds every axis from below."""
    limit = max_elements or spec.max_elements
    rank = draw(st.integers(max(spec.ranks[0], min_rank, 1), spec.ranks[1]))
    families = ["generic", "many_rows_short", "few_rows_long"] + ([] if nonempty else ["zero_size"])
    family = draw(st.sampled_from(families))
    if last is None:
        if family == "many_rows_short":
            last = draw(st.integers(min_dim, 8))
        elif family == "few_rows_long":
            last = draw(st.integers(1000, max(1000, min(limit, 8192))))
        else:
            last = draw(st.one_of(st.integers(min_dim, 40), st.sampled_from([p for p in spec.probes() if p >= min_dim])))
    lead_budget = max(1, limit // max(last, 1))
    lead = []
    for i in range(rank - 1):
        if family == "few_rows_long":
            hi = 2
        elif family == "many_rows_short":
            hi = 64 if i == 0 else 8
        else:
            hi = 6
        d = draw(st.integers(min_dim, max(min_dim, min(hi, lead_budget))))
        lead_budget = max(1, lead_budget // d)
        lead.append(d)
    shape = (*lead, last)
    if family == "zero_size":
        axis = draw(st.integers(0, rank - 1))
        shape = tuple(0 if i == axis else d for i, d in enumerate(shape))
    return shape


@st.composite
def layout_params(draw, name: str, shape: tuple):
    """Parameters for layout ``name`` on an argument of ``shape`` (assumes it is applicable)."""
    nd = len(shape)
    if name == "strided":
        big = [a for a in range(nd) if shape[a] > 1]  # a stride on a size-1 axis is meaningless
        axis = draw(st.sampled_from(sorted(big, key=lambda a: a != nd - 1)))
        step = draw(st.integers(2, 3))
        return {"axis": axis, "step": step, "start": draw(st.integers(0, step - 1))}
    if name == "broadcast":
        return {"axis": draw(st.sampled_from([a for a in range(nd) if shape[a] > 1]))}
    if name == "offset":
        return {"offset": draw(st.integers(1, 7))}
    if name == "reversed":
        big = [a for a in range(nd) if shape[a] > 1]
        axes = draw(st.lists(st.sampled_from(big), min_size=1, max_size=len(big), unique=True))
        return {"axes": sorted(axes)}
    return {}


@st.composite
def samples(draw, spec: OpSpec, dtype: str, kind: str = "finite", last: int | None = None,
            layout: str | None = None, layout_arg: str | None = None, nonempty: bool = False,
            require: tuple = (), max_elements: int | None = None, statics: str = "all",
            min_rank: int = 1, min_dim: int = 1):
    """A full Sample for ``spec`` in dtype case ``dtype``.

    layout: None = all contiguous; "any" = every array draws a layout; a LAYOUTS name = that
    layout for ``layout_arg`` (others contiguous). require: optional arrays that must be present.
    statics: "all" or "smooth" (values usable for finite differences).
    """
    dtypes = dtype_case(dtype, spec)
    need_nonempty = nonempty or layout not in (None, "contiguous")
    if layout not in (None, "contiguous", "any"):
        min_dim = max(min_dim, 2)
    shape = draw(main_shapes(spec, last=last, nonempty=need_nonempty, max_elements=max_elements,
                             min_rank=min_rank, min_dim=min_dim))
    chosen = _draw_statics(draw, spec, statics) if spec.statics_first else {}
    arrays = {}
    for a in spec.arrays:
        present = not a.optional or a.name in require or a.name == layout_arg or draw(st.booleans())
        if not present:
            arrays[a.name] = None
            continue
        arg_shape = a.shape_for(shape, chosen)
        name = "contiguous"
        if layout == "any":
            name = draw(st.sampled_from([n for n in layouts.LAYOUTS if layouts.applicable(n, arg_shape)]))
        elif layout is not None and a.name == layout_arg:
            name = layout
            assume(layouts.applicable(name, arg_shape))
        arrays[a.name] = ArgRecipe(dtypes[a.name], draw(value_recipes(dtypes[a.name], kind)), name,
                                   draw(layout_params(name, arg_shape)))
    for d in spec.derived:  # contiguous, finite (specials go to the drawn arrays)
        arrays[d.name] = ArgRecipe(dtypes[d.name], draw(value_recipes(dtypes[d.name], "smooth" if kind == "smooth" else "finite")))
    if not spec.statics_first:
        chosen = _draw_statics(draw, spec, statics)
    return Sample(tuple(shape), arrays, chosen)


def _draw_statics(draw, spec: OpSpec, statics: str) -> dict:
    chosen = {}
    for s in spec.statics:
        pool = s.smooth if statics == "smooth" and s.smooth else s.values
        chosen[s.name] = draw(st.sampled_from(pool))
    return chosen


def size(shape) -> int:
    return math.prod(shape)
