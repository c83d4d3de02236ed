"""``mlxr-conform bench``: throughput of each fused op against its reference, MLX's own op and
a plain copy of the same bytes (the physical limit), appended to the JSON results file.

Results file (default ``results/bench.json``; certification writes ``results/conformance.json``):
``{"schema": "mlxr-bench/1", "rows": [row, ...]}``, each run appending its rows. One row per
(op, shape, dtype, implementation) with the keys ``ROW_FIELDS`` plus the run's environment
(device, MLX version and build, machine, CPU ISA, timestamp, git commit, load average).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from . import _options

SCHEMA = "mlxr-bench/1"
DEFAULT_PATH = "results/bench.json"
IMPLS = ("fused", "reference", "mlx", "copy", "copy2")
# Every bench row has these keys (None where not applicable), plus those of _options.environment().
ROW_FIELDS = (
    "op", "case", "shape", "dtype", "impl", "impl_name", "unit", "bytes", "flops",
    "time_median_s", "time_q1_s", "time_q3_s", "time_iqr_s", "batch", "repeats",
    "throughput", "throughput_q1", "throughput_q3",
    "pct_of_copy", "pct_of_copy2", "speedup_vs_reference", "speedup_vs_mlx", "fused_kernel", "error",
)


def register(subparsers) -> None:
    p = subparsers.add_parser("bench", help="benchmark fused ops against reference, MLX and copy",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("ops", nargs="*", metavar="OP", help="ops to benchmark (default: every bench case)")
    _options.add_device_option(p)
    _options.add_dtype_option(p)
    p.add_argument("--sizes", type=_options.parse_shapes, metavar="SHAPES",
                   help="shapes instead of each case's own, e.g. 4096x4096,8192x4096")
    p.add_argument("--quick", action="store_true", help="small sizes and few repeats (tests, smoke runs)")
    p.add_argument("--repeats", type=int, help="timed samples per column (default 15, quick 3)")
    p.add_argument("--warmup", type=int, default=2, help="untimed calls first (default 2)")
    p.add_argument("--plot", metavar="DIR", type=Path, help="write PNG plots of throughput vs size into DIR")
    _options.add_results_option(p, DEFAULT_PATH)
    p.add_argument("--no-results", action="store_true", help="do not write the results file")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..bench import _timing, available, load

    try:
        dtype_names = _options.dtype_names(args.dtype)
    except argparse.ArgumentTypeError as error:
        print(f"mlxr-conform bench: {error}", file=sys.stderr)
        return 2
    ops = args.ops or available()
    unknown = [op for op in ops if op not in available()]
    if unknown:
        print(f"mlxr-conform bench: no bench case for {', '.join(unknown)} "
              f"(have: {', '.join(available())}); add conformance/bench/<op>.py", file=sys.stderr)
        return 2
    if args.plot and not _have_matplotlib():
        print("mlxr-conform bench: --plot needs matplotlib: pip install 'mlxr-conform[plot]'", file=sys.stderr)
        return 2

    device = _options.to_device(args.device)
    _timing.prepare()
    env = _options.environment(args.device)
    repeats = args.repeats or (3 if args.quick else 15)
    print(f"device {args.device} | MLX {env['mlx_version']} ({env['mlx_backend']}) | ISA {env['isa']} "
          f"| {env['machine']} | load {_fmt(env['load_avg_1m'], '.1f')}\n")

    rows, failed = [], False
    for op in ops:
        bench = load(op)
        shapes = args.sizes or (bench.quick_shapes if args.quick else bench.shapes)
        dtypes = dtype_names or list(bench.dtypes)
        op_rows = []
        for shape in shapes:
            for dtype in dtypes:
                case_rows = bench_case(bench, tuple(shape), dtype, device, args.device, repeats, args.warmup)
                failed |= any(r["error"] for r in case_rows)
                op_rows += [{**r, **env} for r in case_rows]
        print_table(bench, op_rows)
        rows += op_rows
        if args.plot:
            print(f"  plot: {plot(bench, op_rows, args.plot)}")
        print()

    if not args.no_results:
        append_results(Path(args.results), rows)
        print(f"{len(rows)} rows appended to {args.results}")
    return 1 if failed else 0


def bench_case(bench, shape, dtype_name, device, device_name, repeats, warmup) -> list[dict]:
    """Rows for one (shape, dtype): every column timed on the same inputs."""
    import mlx.core as mx

    from ...fused import observe
    from ..bench import _timing

    dtype = _options.to_dtype(dtype_name)
    with mx.stream(device):
        args = bench.make_inputs(shape, dtype)
        mx.eval([a for a in args if isinstance(a, mx.array)])
        copy_src = mx.zeros((max(1, bench.bytes_moved(shape, dtype) // 8),), mx.uint32)
        mx.eval(copy_src)
    nbytes = bench.bytes_moved(shape, dtype)
    flops = bench.flops(shape, dtype) if bench.flops else None
    columns = {**bench.columns(), "copy": ("mx.bitwise_invert(uint32)", mx.bitwise_invert)}
    col_args = {"copy": (copy_src,)}
    if device.type == mx.cpu:
        # MLX runs each CPU stream on its own thread: two halves on two streams are the copy
        # limit of a kernel that uses two cores (the fused kernels split large inputs).
        columns["copy2"] = ("mx.bitwise_invert(uint32) on 2 CPU streams", _two_stream_invert)
        with mx.stream(device):
            halves = tuple(mx.zeros((max(1, nbytes // 16),), mx.uint32) for _ in range(2))
            mx.eval(halves)
        col_args["copy2"] = halves
    kernel = None
    try:
        with observe() as seen, mx.stream(device):
            mx.eval(columns["fused"][1](*args))
        prefix = f"{device_name}:{bench.op}"
        kernel = ",".join(sorted(k for k in seen.kernels if k.startswith(prefix))) or None
    except Exception:  # noqa: BLE001 - measure_all reports the same error for the column
        pass
    measured = _timing.measure_all(
        {impl: (fn, col_args.get(impl, args)) for impl, (_, fn) in columns.items()},
        device, repeats=repeats, warmup=warmup, out_bytes=nbytes // 2)
    timings = {impl: t for impl, t in measured.items() if isinstance(t, _timing.Timing)}
    errors = {impl: f"{type(e).__name__}: {e}" for impl, e in measured.items() if isinstance(e, Exception)}

    def speedup(impl, base):
        return timings[base].median / timings[impl].median if impl in timings and base in timings else None

    rows = []
    for impl, (name, _) in columns.items():
        t = timings.get(impl)
        work = flops if flops else nbytes
        rows.append({
            "op": bench.op, "case": "x".join(map(str, shape)), "shape": list(shape), "dtype": dtype_name,
            "impl": impl, "impl_name": name, "unit": bench.unit, "bytes": nbytes, "flops": flops,
            "time_median_s": t and t.median, "time_q1_s": t and t.q1, "time_q3_s": t and t.q3,
            "time_iqr_s": t and t.iqr, "batch": t and t.batch, "repeats": t and t.repeats,
            "throughput": t and work / t.median / 1e9,
            # A slower sample (q3 time) is a lower throughput: its q1.
            "throughput_q1": t and work / t.q3 / 1e9, "throughput_q3": t and work / t.q1 / 1e9,
            "pct_of_copy": speedup(impl, "copy") and 100 * speedup(impl, "copy"),
            "pct_of_copy2": speedup(impl, "copy2") and 100 * speedup(impl, "copy2"),
            "speedup_vs_reference": speedup(impl, "reference"), "speedup_vs_mlx": speedup(impl, "mlx"),
            "fused_kernel": kernel if impl == "fused" else None, "error": errors.get(impl),
        })
    return rows


_STREAMS: list = []


def _two_stream_invert(a, b):
    """``bitwise_invert`` of ``a`` and ``b`` on two CPU streams (two threads), made once."""
    import mlx.core as mx

    if not _STREAMS:
        _STREAMS.extend(mx.new_stream(mx.cpu) for _ in range(2))
    return [mx.bitwise_invert(a, stream=_STREAMS[0]), mx.bitwise_invert(b, stream=_STREAMS[1])]


def _fmt(value, spec=".1f", missing="-"):
    return missing if value is None else format(value, spec)


def print_table(bench, rows) -> None:
    """One line per (shape, dtype): throughput median (IQR) per column, % of copy, speedups."""
    by_case: dict[tuple, dict] = {}
    for r in rows:
        by_case.setdefault((r["case"], r["dtype"]), {})[r["impl"]] = r
    impls = [i for i in IMPLS if any(i in c for c in by_case.values())]
    u = bench.unit
    two = "copy2" in impls
    header = (["shape", "dtype"] + [f"{i} {u}" for i in impls] + ["fused %copy"] + (["%copy2"] if two else [])
              + ["vs ref", "vs mlx", "fused kernel"])
    lines = []
    for (case, dtype), cols in by_case.items():
        line = [case, dtype]
        for impl in impls:
            r = cols.get(impl, {})
            line.append("error" if r.get("error") else
                        f"{_fmt(r.get('throughput'))} ({_fmt(r.get('throughput_q1'))}-{_fmt(r.get('throughput_q3'))})")
        fused = cols.get("fused", {})
        line += [_fmt(fused.get("pct_of_copy"), ".0f") + "%"]
        if two:
            line += [_fmt(fused.get("pct_of_copy2"), ".0f") + "%"]
        line += [_fmt(fused.get("speedup_vs_reference"), ".2f") + "x",
                 _fmt(fused.get("speedup_vs_mlx"), ".2f") + "x", fused.get("fused_kernel") or "NONE (fallback)"]
        lines.append(line)
    widths = [max(len(str(x)) for x in col) for col in zip(header, *lines)]
    print(f"{bench.op}: {u}, median (IQR) over samples; copy = mx.bitwise_invert over the same bytes"
          + ("; copy2 = the same split over two CPU streams (threads)" if two else ""))
    for line in [header] + lines:
        print("  " + "  ".join(str(x).ljust(w) for x, w in zip(line, widths)).rstrip())
    for r in rows:
        if r["error"]:
            print(f"  {r['case']} {r['dtype']} {r['impl']}: {r['error']}")


def load_results(path: Path) -> dict:
    """A bench results file; SystemExit with the reason if it is not one."""
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise SystemExit(f"mlxr-conform bench: {path} is not JSON ({error}); move it away") from None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise SystemExit(f"mlxr-conform bench: {path} is not a {SCHEMA} results file; pass another --results")
    return data


def append_results(path: Path, rows: list[dict]) -> None:
    """Appends ``rows`` to the results file (created if absent), keeping earlier runs."""
    data = load_results(path) if path.exists() else {"schema": SCHEMA, "rows": []}
    data["rows"].extend(rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1, allow_nan=False) + "\n")
    os.replace(tmp, path)


def _have_matplotlib() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def plot(bench, rows, directory: Path) -> Path:
    """One PNG per op: throughput vs bytes moved, one panel per dtype, one line per column."""
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    dtypes = list(dict.fromkeys(r["dtype"] for r in rows))
    fig, axes = plt.subplots(1, len(dtypes), figsize=(5 * len(dtypes), 4), squeeze=False)
    for ax, dtype in zip(axes[0], dtypes):
        for impl in IMPLS:
            pts = sorted((r["bytes"], r) for r in rows if r["dtype"] == dtype and r["impl"] == impl and r["throughput"])
            if not pts:
                continue
            xs = [b / 1e6 for b, _ in pts]
            ax.errorbar(xs, [r["throughput"] for _, r in pts], marker="o", label=pts[0][1]["impl_name"],
                        yerr=[[r["throughput"] - r["throughput_q1"] for _, r in pts],
                              [r["throughput_q3"] - r["throughput"] for _, r in pts]], capsize=3)
        ax.set_xscale("log")
        # Label the measured sizes themselves: a few sizes rarely span a decade of log ticks.
        sizes = sorted({r["bytes"] / 1e6 for r in rows if r["dtype"] == dtype})
        ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        ax.set_xticks(sizes, [f"{s:.3g}" for s in sizes])
        ax.set_xlabel("MB moved (read + written)")
        ax.set_ylabel(bench.unit)
        ax.set_title(f"{bench.op} {dtype} ({rows[0]['device']}, {rows[0]['isa']})")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    directory.mkdir(parents=True, exist_ok=True)
    out = directory / f"{bench.op}_{rows[0]['device']}.png"
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
