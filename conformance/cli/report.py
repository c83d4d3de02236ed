"""``mlxr-conform report``: render a conformance results file (it only reads JSON).

Table op × implementation × device × dtype with the verdict (certified / failed / expected
failure / not run / incomplete), the worst errors vs the float64 oracle, failing checks with
their one-line reproduction, and where the results come from (MLX version/build, machine...).
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
BENCH_PATH = "results/bench.json"


def register(subparsers) -> None:
    from ..results import DEFAULT_PATH

    p = subparsers.add_parser("report", help="render conformance results (table, Markdown, JSON, HTML)",
                              description=__doc__.strip().splitlines()[0])
    p.add_argument("--results", default=DEFAULT_PATH, metavar="FILE", help=f"results JSON (default {DEFAULT_PATH})")
    p.add_argument("--markdown", metavar="FILE", help="also write a Markdown report (e.g. CONFORMANCE.md)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON instead of a table")
    p.add_argument("--html", metavar="DIR", help="also write DIR/index.html (tables and benchmark plots)")
    p.add_argument("--bench", default=BENCH_PATH, metavar="FILE",
                   help=f"benchmark results of `mlxr-conform bench` to include (default {BENCH_PATH}, if present)")
    p.set_defaults(func=run)


def summarize(document: dict) -> dict:
    """Per op × impl × device × dtype: verdict, counts, worst errors, failures."""
    from ..results import groups, verdict, worst

    rows = []
    for (op, impl, target, device, dtype), records in groups(document).items():
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
        xfails = sorted({f"{r['check']}[{r['variant']}]: {r.get('reason')}" for r in records if r["outcome"] == "xfail"})
        rows.append({
            "op": op, "impl": impl, "target": target, "device": device, "dtype": dtype,
            "verdict": verdict(records), "counts": counts, "checks": len(records),
            "errors": worst([r for r in records if r["check"] in FORWARD_CHECKS]),
            "grad_errors": worst([r for r in records if r["check"] == "autodiff"]),
            "failures": failures, "not_run": not_run, "expected_failures": xfails,
        })
    return {"source": _source(document), "rows": rows}


def _source(d: dict) -> dict:
    mlx, machine, git = d.get("mlx", {}), d.get("machine", {}), d.get("git", {})
    return {
        "created": d.get("created"), "mlx": mlx.get("version"), "build": mlx.get("build"), "cpu_isa": mlx.get("cpu_isa"),
        "devices": d.get("devices"), "machine": f"{machine.get('node')} ({machine.get('machine')}, {machine.get('cpu_count')} cpus)",
        "platform": machine.get("platform"), "commit": (git.get("commit") or "unknown")[:12] + (" (dirty)" if git.get("dirty") else ""),
        "profile": d.get("hypothesis", {}).get("profile"), "duration_s": d.get("duration_s"),
    }


def _fmt(v: float) -> str:
    return "0" if v == 0 else f"{v:.3g}"


def _passed(row) -> str:
    c = row["counts"]
    return f"{c.get('passed', 0)}/{row['checks']}" + (f" (+{c['xfail']} xfail)" if c.get("xfail") else "")


HEADER = ("op", "impl", "device", "dtype", "verdict", "checks passed", "max abs", "max rel", "max ULP", "grad max ULP")


def _cells(row) -> tuple:
    e, g = row["errors"], row["grad_errors"]
    return (row["op"], row["impl"], row["device"], row["dtype"], row["verdict"], _passed(row),
            _fmt(e["abs"]), _fmt(e["rel"]), _fmt(e["ulp"]), _fmt(g["ulp"]))


def _source_line(s: dict) -> str:
    return (f"MLX {s['mlx']} ({s['build']} build, CPU ISA {s['cpu_isa']}) · devices {', '.join(s['devices'] or [])} · "
            f"{s['machine']} · commit {s['commit']} · profile {s['profile']} · {s['created']} ({s['duration_s']} s)")


def text(summary: dict) -> str:
    rows = [HEADER] + [_cells(r) for r in summary["rows"]]
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(HEADER))]
    lines = [_source_line(summary["source"]), ""]
    for i, r in enumerate(rows):
        lines.append("  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip())
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
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
        for x in r["expected_failures"]:
            lines.append(f"{bullet}expected failure {head}: {x}")
    return ([""] + lines) if lines else lines


def markdown(summary: dict, bench_rows: list[dict] | None = None) -> str:
    out = ["# Conformance", "", _source_line(summary["source"]), "",
           "Errors are the worst seen vs the float64 oracle on ordinary inputs (forward, thresholds, layouts, "
           "vmap, compile); gradients separately. Produced by `pytest conformance/ --results FILE` and rendered "
           "by `mlxr-conform report`.", "",
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
    return (f"<!doctype html><meta charset='utf-8'><title>mlxr conformance</title><style>"
            "td,th{padding:2px 8px;text-align:left}.certified{background:#dfd}.failed{background:#fdd}"
            ".not-run,.incomplete{background:#eee}.expected-failure{background:#ffd}</style>"
            f"<h1>Conformance</h1><p>{esc(_source_line(summary['source']))}</p>"
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
    from ..results import load

    path = args.results
    if not os.path.exists(path):
        print(f"no conformance results at {path}.\nProduce them with:\n"
              f"  pytest conformance/ -n auto --results {path}\n"
              f"or certify one op:\n  mlxr-conform certify rms_norm --results {path}", file=sys.stderr)
        return 1
    try:
        summary = summarize(load(path))
    except (ValueError, KeyError, json.JSONDecodeError) as e:
        print(f"{path}: cannot read conformance results ({e})", file=sys.stderr)
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
