"""``mlxr-conform report``: render a conformance results file (it only reads JSON).

A per-op overview of the kit's fused op by backend (cpu, CUDA GPU, metal-sim — the Metal
kernels on the CPU simulator, marked simulated — and the real Metal GPU, "not run here" unless
the results come from a Mac), then a table op × implementation × device × dtype with the
verdict (certified / failed / expected failure / not run / incomplete), the worst errors vs the
float64 oracle, failing checks with their one-line reproduction, and where the results come
from (MLX version/build, machine...).
"""

from __future__ import annotations

import html
import json
import os
import sys

from . import _report_bench

# Checks on ordinary inputs: their errors are the "worst error" columns. special_values is left
# out (huge inputs overflow the reference too) and autodiff has its own column.
FORWARD_CHECKS = ("forward", "thresholds", "layouts", "vmap", "compile")
# Overview columns: (key, label). Records of device "gpu" belong to the build's GPU backend.
BACKENDS = (("cpu", "cpu"), ("cuda", "CUDA GPU"), ("metal-sim", "metal-sim (simulated)"), ("metal", "Metal GPU"))
NOT_RUN_HERE, NO_KERNEL = "not run here", "no kernel"
BENCH_PATH = "results/bench.json"


def register(subparsers) -> None:
    from ..results import DEFAULT_PATH

    p = subparsers.add_parser("report", help="render conformance results (table, Markdown, JSON, HTML)",
                              description=__doc__.strip().splitlines()[0])
    p.add_argument("--results", action="append", metavar="FILE",
                   help=f"results JSON (default {DEFAULT_PATH}); repeat to merge runs of several machines "
                        "(e.g. Linux cpu + metal-sim, a CUDA GPU, a Mac's Metal GPU)")
    p.add_argument("--markdown", metavar="FILE", help="also write a Markdown report (e.g. CONFORMANCE.md)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON instead of a table")
    p.add_argument("--html", metavar="DIR", help="also write DIR/index.html (tables and benchmark plots)")
    p.add_argument("--bench", default=BENCH_PATH, metavar="FILE",
                   help=f"benchmark results of `mlxr-conform bench` to include (default {BENCH_PATH}, if present)")
    p.set_defaults(func=run)


def summarize(document: dict) -> dict:
    """Per op × impl × device × dtype: verdict, counts, worst errors, failures; and the
    per-op backend overview of the fused op."""
    from ..results import applicable, backend, groups, verdict, worst

    rows = []
    # Merged runs may hold one device on two backends (a CUDA machine's gpu, a Mac's gpu).
    split = [(key, be, [r for r in records if backend(r, document) == be])
             for key, records in groups(document).items()
             for be in dict.fromkeys(backend(r, document) for r in records)]
    for (op, impl, target, device, dtype), be, records in split:
        counts = {}
        for r in records:
            counts[r["outcome"]] = counts.get(r["outcome"], 0) + 1
        failures = [
            {"check": r["check"], "variant": r["variant"], "outcome": r["outcome"],
             "message": ((r.get("failure") or {}).get("message") or r.get("reason") or "").splitlines()[0][:300],
             "repro": (r.get("failure") or {}).get("repro")}
            for r in records if r["outcome"] in ("failed", "xpass")
        ]
        not_run = sorted({f"{r['check']}: {r.get('reason')}" for r in records if r["outcome"] == "not-run"})
        not_applicable = sorted({r["check"] + (f"[{r['variant']}]" if r["check"] == "fused_path" else "")
                                 for r in records if r["outcome"] == "not-applicable"})
        xfails = sorted({f"{r['check']}[{r['variant']}]: {r.get('reason')}" for r in records if r["outcome"] == "xfail"})
        rows.append({
            "op": op, "impl": impl, "target": target, "device": device, "dtype": dtype,
            "backend": be,
            "verdict": verdict(records), "counts": counts, "checks": len(applicable(records)),
            "errors": worst([r for r in records if r["check"] in FORWARD_CHECKS]),
            "grad_errors": worst([r for r in records if r["check"] == "autodiff"]),
            "failures": failures, "not_run": not_run, "expected_failures": xfails,
            "not_applicable": not_applicable,
        })
    return {"source": _source(document), "sources": [_source(run) for run in document.get("runs") or [document]],
            "rows": rows, "backends": backends(document, rows)}


def backends(document: dict, rows: list[dict]) -> dict:
    """Per op, the fused op's verdicts by backend: "certified (3)" (dtype count per verdict),
    "no kernel" where the backend has none for the op, "not run here" where it was not run."""
    kernels = document.get("kernels") or {}
    cells: dict[str, dict[str, list[str]]] = {}
    for r in rows:
        cells.setdefault(r["op"], {})
        if r["impl"] == "fused":
            cells[r["op"]].setdefault(r["backend"], []).append(r["verdict"])
    out = []
    for op, by_backend in sorted(cells.items()):
        row = {"op": op}
        for key, label in BACKENDS:
            verdicts = by_backend.get(key)
            if verdicts:
                row[label] = ", ".join(f"{v} ({verdicts.count(v)})" for v in sorted(set(verdicts)))
            else:
                row[label] = NO_KERNEL if key in kernels and op not in kernels[key] else NOT_RUN_HERE
        out.append(row)
    return {"columns": ["op"] + [label for _, label in BACKENDS], "rows": out}


def _backend_lines(summary: dict) -> list[list[str]]:
    b = summary["backends"]
    return [b["columns"]] + [[r[c] for c in b["columns"]] for r in b["rows"]]


def _source(d: dict) -> dict:
    mlx, machine, git = d.get("mlx", {}), d.get("machine", {}), d.get("git", {})
    return {
        "created": d.get("created"), "mlx": mlx.get("version"), "build": mlx.get("build"), "cpu_isa": mlx.get("cpu_isa"),
        "devices": d.get("devices"), "machine": f"{machine.get('node')} ({machine.get('machine')}, {machine.get('cpu_count')} cpus)",
        "platform": machine.get("platform"), "commit": (git.get("commit") or "unknown")[:12] + (" (dirty)" if git.get("dirty") else "")
        + (" (named by the runner, tree state unknown)" if git.get("from") == "MLXR_SOURCE_COMMIT" else ""),
        "profile": d.get("hypothesis", {}).get("profile"), "duration_s": d.get("duration_s"),
        "gpu": (d.get("device_info") or {}).get("gpu", {}).get("device_name"),
    }


def _fmt(v: float) -> str:
    return "0" if v == 0 else f"{v:.3g}"


def _passed(row) -> str:
    c = row["counts"]
    return f"{c.get('passed', 0)}/{row['checks']}" + (f" (+{c['xfail']} xfail)" if c.get("xfail") else "")


HEADER = ("op", "impl", "device", "dtype", "verdict", "checks passed", "max abs", "max ULP", "tol used", "grad tol used")


def _cells(row) -> tuple:
    e, g = row["errors"], row["grad_errors"]
    device = row["device"] if row["backend"] == row["device"] else f"{row['device']} ({row['backend']})"
    return (row["op"], row["impl"], device, row["dtype"], row["verdict"], _passed(row),
            _fmt(e["abs"]), _fmt(e["ulp"]), _share(e["tol_used"]), _share(g["tol_used"]))


def _share(v) -> str:
    return "-" if v is None else f"{100 * v:.0f} %"


def _source_line(s: dict) -> str:
    gpu = f" (GPU: {s['gpu']})" if s.get("gpu") else ""
    return (f"MLX {s['mlx']} ({s['build']} build, CPU ISA {s['cpu_isa']}) · devices {', '.join(s['devices'] or [])}{gpu} · "
            f"{s['machine']} · commit {s['commit']} · profile {s['profile']} · {s['created']} ({s['duration_s']} s)")


def _source_lines(summary: dict) -> list[str]:
    """One line per merged run ("run 1: ..."), or the single run's line."""
    sources = summary.get("sources") or [summary["source"]]
    if len(sources) == 1:
        return [_source_line(sources[0])]
    return [f"run {i}: {_source_line(s)}" for i, s in enumerate(sources, 1)]


def _aligned(rows: list) -> list[str]:
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for i, r in enumerate(rows):
        lines.append("  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip())
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    return lines


def text(summary: dict) -> str:
    lines = [*_source_lines(summary), "", "Fused op by backend (dtypes per verdict):"]
    lines += _aligned(_backend_lines(summary)) + [""]
    lines += _aligned([HEADER] + [_cells(r) for r in summary["rows"]])
    lines += _details(summary, bullet="  ")
    return "\n".join(lines)


def _details(summary: dict, bullet: str) -> list[str]:
    lines = []
    for r in summary["rows"]:
        head = f"{r['op']} / {r['impl']} ({r['target']}) / {r['device']} / {r['dtype']}"
        for f in r["failures"]:
            lines += [f"{bullet}FAILED {head}: {f['check']}[{f['variant']}] {f['outcome']}: {f['message']}"]
            if f["repro"]:
                lines.append(f"{bullet}  reproduce: {f['repro']}")
        for n in r["not_run"]:
            lines.append(f"{bullet}NOT RUN {head}: {n}")
        if r["not_applicable"]:
            lines.append(f"{bullet}not applicable {head}: {', '.join(r['not_applicable'])}")
        for x in r["expected_failures"]:
            lines.append(f"{bullet}expected failure {head}: {x}")
    return ([""] + lines) if lines else lines


def markdown(summary: dict, bench_rows: list[dict] | None = None) -> str:
    out = ["# Conformance", "", *[f"- {line}" for line in _source_lines(summary)], "",
           "Errors are the worst seen vs the float64 oracle on ordinary inputs (forward, thresholds, layouts, "
           "vmap, compile); gradients separately. *tol used* = worst |candidate - oracle| / the allowed bound "
           "(<= 100 % passes); ULP errors are in the output dtype at the oracle's value, so they are large where "
           "outputs cancel towards 0 (the bound's absolute terms cover that). Produced by `pytest conformance/ --results FILE` and rendered "
           "by `mlxr-conform report`.", "",
           "## The fused op by backend", "",
           "Dtypes per verdict. metal-sim runs the Metal kernels (`kernels/*.metal`) through their launch plans "
           "on a CPU simulator: simulated, not Apple hardware; the Metal GPU column needs a Mac "
           "(`.github/workflows/macos-metal.yml`).", ""]
    backend_rows = _backend_lines(summary)
    out += ["| " + " | ".join(backend_rows[0]) + " |", "|" + "---|" * len(backend_rows[0])]
    out += ["| " + " | ".join(r) + " |" for r in backend_rows[1:]]
    out += ["", "## By implementation, device and dtype", "",
            "| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    out += ["| " + " | ".join(str(c) for c in _cells(r)) + " |" for r in summary["rows"]]
    details = _details(summary, bullet="- ")
    if details:
        out += ["", "## Failures, checks not run and expected failures"] + [
            line.replace("reproduce: ", "reproduce: `") + ("`" if "reproduce: " in line else "") for line in details]
    if bench_rows:
        out += _report_bench.markdown(bench_rows)
    return "\n".join(out) + "\n"


def html_page(summary: dict, bench_rows: list[dict] | None = None, plot_files: list[str] = ()) -> str:
    esc = html.escape
    head = "".join(f"<th>{esc(h)}</th>" for h in HEADER)
    body = "".join("<tr class='{}'>{}</tr>".format(esc(r["verdict"].replace(" ", "-")),
                                                  "".join(f"<td>{esc(str(c))}</td>" for c in _cells(r)))
                   for r in summary["rows"])
    details = "".join(f"<li><code>{esc(line.strip())}</code></li>" for line in _details(summary, "") if line)
    backend_rows = _backend_lines(summary)
    overview = "<tr>{}</tr>".format("".join(f"<th>{esc(c)}</th>" for c in backend_rows[0])) + "".join(
        "<tr>{}</tr>".format("".join(f"<td>{esc(c)}</td>" for c in r)) for r in backend_rows[1:])
    return ("<!doctype html><meta charset='utf-8'><title>mlxr conformance</title><style>"
            "td,th{padding:2px 8px;text-align:left}.certified{background:#dfd}.failed{background:#fdd}"
            ".not-run,.incomplete{background:#eee}.expected-failure{background:#ffd}</style>"
            "<h1>Conformance</h1>" + "".join(f"<p>{esc(line)}</p>" for line in _source_lines(summary)) +
            "<h2>The fused op by backend</h2><p>metal-sim: the Metal kernels on a CPU simulator (simulated)</p>"
            f"<table>{overview}</table><h2>By implementation, device and dtype</h2>"
            f"<table><tr>{head}</tr>{body}</table><ul>{details}</ul>" + _bench_html(bench_rows, plot_files))


def _bench_html(rows: list[dict] | None, plot_files) -> str:
    if not rows:
        return "<h2>Benchmarks</h2><p>No benchmark results: run <code>mlxr-conform bench</code>.</p>"
    esc = html.escape
    head = "".join(f"<th>{esc(h)}</th>" for h in _report_bench.HEADER)
    body = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in line) + "</tr>" for line in _report_bench.table(rows))
    imgs = "".join(f"<p><img src='{esc(name)}' alt='{esc(name)}'></p>" for name in plot_files) or (
        "<p>No plots: install matplotlib (<code>pip install 'mlxr-conform[plot]'</code>).</p>")
    return f"<h2>Benchmarks</h2><table><tr>{head}</tr>{body}</table>{imgs}"


def run(args) -> int:
    from ..results import DEFAULT_PATH, load, merge

    documents = []
    for path in args.results or [DEFAULT_PATH]:
        if not os.path.exists(path):
            print(f"no conformance results at {path}.\nProduce them with:\n"
                  f"  pytest conformance/ -n auto --results {path}\n"
                  f"or certify one op:\n  mlxr-conform certify rms_norm --results {path}", file=sys.stderr)
            return 1
        try:
            documents.append(load(path))
        except (ValueError, KeyError, json.JSONDecodeError) as e:
            print(f"{path}: cannot read conformance results ({e})", file=sys.stderr)
            return 1
    try:
        summary = summarize(merge(*documents) if len(documents) > 1 else documents[0])
    except (ValueError, KeyError) as e:
        print(f"cannot summarise conformance results ({e})", file=sys.stderr)
        return 1
    try:
        bench_rows = _report_bench.load(args.bench)
    except (ValueError, KeyError, json.JSONDecodeError) as e:
        print(f"{args.bench}: cannot read benchmark results ({e})", file=sys.stderr)
        return 1
    bench_rows = bench_rows and _report_bench.latest(bench_rows)
    print(json.dumps(summary, indent=1) if args.json else text(summary))
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(markdown(summary, bench_rows))
    if args.html:
        os.makedirs(args.html, exist_ok=True)
        plot_files = _report_bench.plots(bench_rows, args.html) if bench_rows else []
        with open(os.path.join(args.html, "index.html"), "w") as f:
            f.write(html_page(summary, bench_rows, plot_files))
    return 0
