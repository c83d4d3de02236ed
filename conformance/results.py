"""The conformance results file: one JSON document per pytest run (merged across xdist workers).

Schema ``mlxr-conformance/1``::

    {
      "schema": "mlxr-conformance/1",
      "created": "2026-11-25T22:00:00+00:00",      # UTC, end of run
      "duration_s": 123.4,
      "command": ["pytest", "conformance/", "-n", "auto"],
      "machine": {"node", "platform", "machine", "processor", "cpu_count", "python"},
      "mlx": {"version": "0.32.4", "build": "cpu" | "cuda" | "metal", "cpu_isa": "avx512",
              "gpu_available": false},
      "git": {"commit": "<sha>" | null, "dirty": bool | null,
              "from": "package" | "invocation directory" | "MLXR_SOURCE_COMMIT" | null},  # where it was read
      "hypothesis": {"profile": "ci" | "thorough", "max_examples": 12, "derandomize": true},
      "devices": ["cpu", "metal-sim"],              # devices requested (metal-sim: simulated Metal)
      "kernels": {"cpu": [ops], "cuda": [ops], "metal": [ops], "metal-sim": [ops]},  # ops with a kernel
      "results": [                                  # one per test (op × impl × device × dtype × check × variant)
        {
          "nodeid": "conformance/test_forward.py::test_forward[rms_norm-fused-cpu-float32]",
          "op": "rms_norm", "impl": "fused" | "native" | "reference" | "candidate",
          "target": "mlxr.fused:rms_norm", "device": "cpu", "dtype": "float32" | "x=bfloat16,weight=float32",
          "check": "forward", "variant": null | "x:strided" | "n=17" | "vjp" | ...,
          "layout": "contiguous" | "strided" | ... | "any",
          "outcome": "passed" | "failed" | "xfail" | "xpass" | "not-run" | "not-applicable",
          "reason": null | "why not run / not applicable / expected to fail",
          "examples": 12,                           # examples executed (shrinking attempts included)
          "errors": {"abs": float, "rel": float, "ulp": float} | null,   # worst vs the oracle
          "failure": null | {"message": str, "example": {...recipe...} | null, "repro": "python -m ..." | null},
          "duration_s": 0.8
        }
      ]
    }

Errors are the worst seen over all examples of the test (including shrinking attempts); ``null``
when the check measures none (errors, purity, fused_path). Non-finite floats are written as
strings ("inf", "nan"). ``load``/``merge``/``groups``/``verdict`` are what ``report`` uses.
"""

from __future__ import annotations

import collections
import json
import math
import os

SCHEMA = "mlxr-conformance/1"
DEFAULT_PATH = os.path.join("results", "conformance.json")
OUTCOMES = ("passed", "failed", "xfail", "xpass", "not-run", "not-applicable")
# Verdicts of an op × impl × device × dtype group.
CERTIFIED, FAILED, EXPECTED_FAILURE, NOT_RUN, INCOMPLETE = (
    "certified", "failed", "expected failure", "not run", "incomplete")


def clean(value):
    """JSON-safe copy: non-finite floats become strings."""
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(v) for v in value]
    return value


def number(value) -> float:
    """A stored error back as a float ("inf" -> inf)."""
    return float(value) if value is not None else 0.0


def write(path: str, document: dict) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(clean(document), f, indent=1, sort_keys=False)
    os.replace(tmp, path)


def load(path: str) -> dict:
    """Read a results file; ValueError if it is not schema ``mlxr-conformance/1``."""
    with open(path) as f:
        document = json.load(f)
    if document.get("schema") != SCHEMA:
        raise ValueError(f"{path}: not a {SCHEMA} results file (schema {document.get('schema')!r})")
    return document


def backend(record: dict, document: dict) -> str:
    """What ran a record: cpu, metal-sim, or the GPU backend of its run's build (cuda, metal)."""
    if record.get("backend"):
        return record["backend"]
    if record["device"] == "gpu":
        return document.get("mlx", {}).get("build") or "gpu"
    return record["device"]


def merge(*documents: dict) -> dict:
    """One document from several runs (e.g. Linux cpu + metal-sim, a CUDA machine, a Mac): later
    runs replace earlier results of the same test; each result keeps its ``backend``."""
    if not documents:
        raise ValueError("nothing to merge")
    merged = dict(documents[-1])
    # Each run's own metadata (machine, MLX build, devices), for the report's source lines.
    merged["runs"] = [run for d in documents for run in (d.get("runs") or [{k: v for k, v in d.items() if k != "results"}])]
    merged["devices"] = list(dict.fromkeys(dev for d in documents for dev in d.get("devices") or ()))
    merged["kernels"] = next((d["kernels"] for d in reversed(documents) if d.get("kernels")), None)
    by_id = {}
    for d in documents:
        for r in d["results"]:
            by_id[(r["nodeid"], r["target"], backend(r, d))] = {**r, "backend": backend(r, d)}
    merged["results"] = list(by_id.values())
    return merged


def group_key(r: dict) -> tuple:
    return (r["op"], r["impl"], r["target"], r["device"], r["dtype"])


def groups(document: dict) -> dict[tuple, list[dict]]:
    """Results grouped by (op, impl, target, device, dtype), in a stable order."""
    out = collections.defaultdict(list)
    for r in document["results"]:
        out[group_key(r)].append(r)
    return dict(sorted(out.items()))


def verdict(records: list[dict]) -> str:
    """certified: every check ran and passed; expected failure: no failure, but some checks are
    declared expected failures (each with a reason in the spec); failed: any failure or
    unexpected pass; not run / incomplete: none / some checks did not run (a check that did
    not run never counts as passed). Checks not applicable on the device (metal-sim: MLX
    transforms around the kernel) are left out: they neither pass nor are owed."""
    records = applicable(records)
    outcomes = collections.Counter(r["outcome"] for r in records)
    if outcomes["failed"] or outcomes["xpass"]:
        return FAILED
    if not records or outcomes["not-run"] == len(records):
        return NOT_RUN
    if outcomes["not-run"]:
        return INCOMPLETE
    if outcomes["xfail"]:
        return EXPECTED_FAILURE
    return CERTIFIED


def applicable(records: list[dict]) -> list[dict]:
    """The records of checks that apply on their device."""
    return [r for r in records if r["outcome"] != "not-applicable"]


def worst(records: list[dict]) -> dict:
    """Worst abs / rel / ulp error and share of the tolerance used over records (0 when none
    measured; tol_used None when no record has it: files written before it existed)."""
    out = {"abs": 0.0, "rel": 0.0, "ulp": 0.0, "tol_used": None}
    for r in records:
        for k in out:
            if r.get("errors") and r["errors"].get(k) is not None:
                out[k] = max(out[k] or 0.0, number(r["errors"][k]))
    return out


def certified(document: dict, op: str | None = None, allow_expected: bool = True) -> bool:
    """True when every group (of ``op``) is certified — or, with ``allow_expected``, passes all
    but its declared expected failures — and at least one group exists."""
    ok = {CERTIFIED, EXPECTED_FAILURE} if allow_expected else {CERTIFIED}
    gs = [v for k, v in groups(document).items() if op is None or k[0] == op]
    return bool(gs) and all(verdict(v) in ok for v in gs)


DEFAULT_PATH = "results/conformance.json"


def certification(op: str, device: str, dtype: str, path: str | None = None) -> tuple[bool, str]:
    """Whether the kit's fused ``op`` is certified on ``device`` in ``dtype`` by a results file
    (``path``, else ``$MLXR_RESULTS``, else ``results/conformance.json``), and why not."""
    path = path or os.environ.get("MLXR_RESULTS") or DEFAULT_PATH
    how = f"run `mlxr-conform certify {op} --device {device} --results {path}`"
    try:
        document = load(path)
    except FileNotFoundError:
        return False, f"no certification results at {path}: {how}"
    records = [r for r in document["results"]
               if (r["op"], r["impl"], r["device"], r["dtype"]) == (op, "fused", device, dtype)]
    state = verdict(records)
    if state in (CERTIFIED, EXPECTED_FAILURE):
        return True, state
    return False, f"{op} is {state} on {device}/{dtype} in {path}: {how}"
