"""``mlxr-conform certify OP``: run the conformance suite for one op (pytest, in a subprocess)
and print a one-screen verdict. Exits 0 iff the implementation is certified on every device
and dtype checked; 1 if not; 2 if the suite could not run."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile


def register(subparsers) -> None:
    p = subparsers.add_parser("certify", help="certify one op's implementation (exit 0 iff certified)",
                              description=__doc__.strip().splitlines()[0])
    p.add_argument("op", help="op name (a spec in mlxr.conformance.specs)")
    p.add_argument("--candidate", metavar="MODULE:ATTR",
                   help="implementation to certify (default: the kit's fused op; also fused|native|reference)")
    p.add_argument("--device", choices=("cpu", "gpu"), help="only this device (default: every available one)")
    p.add_argument("--profile", choices=("ci", "thorough"), default="ci", help="hypothesis profile (default ci)")
    p.add_argument("--results", metavar="FILE", help="keep the results JSON here (default: a temporary file)")
    p.add_argument("--spec", metavar="MODULE", action="append", default=[],
                   help="module defining the OpSpec of an out-of-tree op (repeatable)")
    p.set_defaults(func=run)


# pytest runs from a scratch directory with the caller's directory *appended* to sys.path:
# candidate modules there import, but a source checkout's top-level mlxr/ cannot shadow the
# installed package (as `python -m pytest` from the repo root would let it).
_BOOT = "import sys; sys.path.append(sys.argv.pop(1)); import pytest; sys.exit(pytest.main(sys.argv[1:]))"


def command(args, results: str) -> list[str]:
    """The pytest command line certify runs (from a scratch directory)."""
    import mlxr.conformance

    cmd = [sys.executable, "-c", _BOOT, os.getcwd(), os.path.dirname(os.path.abspath(mlxr.conformance.__file__)),
           "-p", "mlxr_conformance", "-p", "no:cacheprovider", "-q", "--no-header", "-rN",
           "--op", args.op, "--profile", args.profile, "--results", results]
    if args.candidate:
        cmd += ["--candidate", f"{args.op}={args.candidate}"]
    if args.device:
        cmd += ["--device", args.device]
    for module in args.spec:
        cmd += ["--spec", module]
    try:
        import xdist  # noqa: F401

        cmd += ["-n", "auto"]
    except ImportError:
        pass
    return cmd


_PROGRESS = re.compile(r"\[\s*(\d+)%\]\s*$")


def _run_with_progress(cmd: list[str], cwd: str) -> tuple[int, str]:
    """Runs pytest, echoing its percentage lines as they come (long runs show progress)."""
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    for line in proc.stdout:
        lines.append(line)
        match = _PROGRESS.search(line)
        if match:
            print(f"  ... {match.group(1)}% of the checks done", flush=True)
    return proc.wait(), "".join(lines)


def run(args) -> int:
    from ..results import certified, groups, load, verdict
    from ..specs import all_specs
    from .report import summarize

    sys.path.append(os.getcwd())  # --spec modules in the current directory
    specs = all_specs(tuple(args.spec))
    if args.op not in specs:
        print(f"unknown op {args.op!r}; specs: {', '.join(specs)}", file=sys.stderr)
        return 2
    scratch = tempfile.mkdtemp(prefix="mlxr-certify-")
    results = os.path.abspath(args.results or os.path.join(scratch, "results.json"))
    if os.path.exists(results):
        os.remove(results)  # a stale file must never certify anything
    cmd = command(args, results)
    print(f"certifying {args.op} ({args.candidate or 'fused'}), profile {args.profile} ...", flush=True)
    returncode, output = _run_with_progress(cmd, scratch)
    if not os.path.exists(results):
        print(output[-8000:])
        print(f"the suite did not run (pytest exit {returncode}): {' '.join(cmd)}", file=sys.stderr)
        return 2
    document = load(results)
    summary = summarize(document)
    source = summary["source"]
    print(f"MLX {source['mlx']} ({source['build']} build) on {source['machine']}, commit {source['commit']}")
    for (op, impl, target, device, dtype), records in groups(document).items():
        if op != args.op:
            continue
        print(f"  {device:4} {dtype:28} {verdict(records):17} {target}")
    shown = 0
    for row in summary["rows"]:
        for f in row["failures"]:
            if shown < 8:
                print(f"  FAILED {row['device']}/{row['dtype']} {f['check']}[{f['variant']}]: {f['message'][:160]}")
                if f["repro"]:
                    print(f"    reproduce: {f['repro'][:400]}")
            shown += 1
        for n in row["not_run"][:2]:
            print(f"  not run {row['device']}/{row['dtype']}: {n[:160]}")
    if shown > 8:
        print(f"  ... and {shown - 8} more failing checks (mlxr-conform report --results {results})")
    ok = certified(document, args.op)
    xfails = sum(r["outcome"] == "xfail" for r in document["results"] if r["op"] == args.op)
    note = f" with {xfails} declared expected failure(s)" if ok and xfails else ""
    print(("CERTIFIED" if ok else "NOT CERTIFIED") + f"{note}: {args.op} ({args.candidate or 'fused'}); results {results}")
    return 0 if ok else 1
