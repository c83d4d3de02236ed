"""Every declared bad input raises the declared exception with a message matching the regex."""

from __future__ import annotations

import re

import mlx.core as mx

from ..devices import dtypes

NAME = "errors"
EXAMPLES = 0  # deterministic: each error case runs once


def variants(spec, impl, device, dtype):
    # Error cases do not depend on the dtype case: run them with the device's first one only.
    # References validate nothing by contract (the fused op validates before calling them).
    if impl == "reference" or dtype != dtypes(spec, device)[0]:
        return []
    return [e.name for e in spec.errors]


def run(case, sample):
    error = next(e for e in case.spec.errors if e.name == case.variant)
    args = error.build()
    try:
        with mx.stream(case.stream):
            out = case.spec.invoke(case.fn, args)
            mx.eval(out)
    except error.raises as e:
        if not re.search(error.match, str(e)):
            case.fail(f"{error.name}: raised {type(e).__name__}({str(e)!r}), message does not match {error.match!r}", None)
        return
    except Exception as e:
        case.fail(f"{error.name}: raised {type(e).__name__}({str(e)!r}), expected {error.raises.__name__}", None)
    case.fail(f"{error.name}: did not raise (expected {error.raises.__name__} matching {error.match!r})", None)
