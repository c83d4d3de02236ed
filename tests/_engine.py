"""Running the conformance suite from tests: pytest on pytest, in a subprocess, via --results."""

import json
import os
import subprocess
import sys

import mlxr.conformance

CONFORMANCE = os.path.dirname(os.path.abspath(mlxr.conformance.__file__))
HERE = os.path.dirname(os.path.abspath(__file__))


def run_suite(tmp_path, *args, node_ids=()):
    """Run the conformance suite (or the given node ids) with ``args``; return (exit code, results)."""
    results = tmp_path / "results.json"
    targets = [f"{CONFORMANCE}/{n}" for n in node_ids] or [CONFORMANCE]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (HERE, os.environ.get("PYTHONPATH")) if p)}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", *targets, "-p", "no:cacheprovider", "-q", "-p", "no:randomly",
         "--results", str(results), *args],
        env=env, capture_output=True, text=True, cwd=tmp_path,
    )
    assert results.exists(), proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.returncode, json.loads(results.read_text())


def outcomes(document, **match):
    """{(check, dtype, variant): outcome} of the results matching every field in ``match``."""
    return {(r["check"], r["dtype"], r["variant"]): r["outcome"] for r in document["results"]
            if all(r.get(k) == v for k, v in match.items())}
