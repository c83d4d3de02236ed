"""Replay one failing example: ``python -m mlxr.conformance.repro '<json>'``.

The JSON is what a failure's ``repro`` line carries: op, target, device, dtype, check, variant
and the sample recipe. Prints the verdict; exits 1 if the check fails on that example.
"""

from __future__ import annotations

import json
import sys


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    from . import checks
    from .case import Case, CheckFailure
    from .specs import all_specs
    from .strategies import Sample

    payload = json.loads(argv[0])
    spec = all_specs(tuple(payload.get("spec_modules", ())))[payload["op"]]
    case = Case(spec, payload.get("impl", spec.label(payload["target"])), payload["target"], payload["device"],
                payload["dtype"], payload["check"], payload.get("variant"))
    sample = Sample.from_dict(payload["sample"]) if payload.get("sample") else None
    try:
        check = checks.get(case.check)
        if payload.get("isolated"):  # already in the subprocess a check asked for
            check.run(case, sample, isolated=True)
        else:
            check.run(case, sample)
    except CheckFailure as e:
        print(f"FAILED {case.check}[{case.variant}] {case.target} on {case.device}/{case.dtype}:\n{e.reason}")
        return 1
    print(f"passed {case.check}[{case.variant}] {case.target} on {case.device}/{case.dtype}; errors {case.record.errors.as_dict()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
