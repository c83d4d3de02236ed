"""Shared by the newer bench_<op>.py scripts: the timing, the command line, the results files,
a table.

Timing itself is bench_rms_norm.median_seconds (20 independent calls per eval, medians,
implementations interleaved).
"""

import argparse
import json
import os

import mlx.core as mx

from bench_rms_norm import median_seconds  # same folder: the shared interleaved timer


def median_times(fns, x, n_bytes):
    """Median seconds per call of each implementation (15 evals above 64 MB of traffic, 51
    below), then MLX's buffer cache emptied so that every case starts alike."""
    t = median_seconds(fns, x, reps=15 if n_bytes > (64 << 20) else 51)
    mx.clear_cache()
    return t


def table(rows, columns):
    """Fixed-width text: columns are (header, key, format spec, width); lists print as AxB; a
    negative width left-aligns the column."""
    def pad(text, width):
        return f"{text:<{-width}}" if width < 0 else f"{text:>{width}}"

    def cell(value, spec, width):
        return pad("x".join(map(str, value)) if isinstance(value, list) else format(value, spec), width)
    lines = ["".join(pad(h, w) for h, _, _, w in columns)]
    lines += ["".join(cell(r[k], s, w) for _, k, s, w in columns) for r in rows]
    return "\n".join(lines)


def main(name, bench_all, columns):
    """python bench_<name>.py [--out DIR] [--only PREFIXES]: prints the table, writes
    bench_<name>.json / .txt into DIR."""
    p = argparse.ArgumentParser()
    p.add_argument("--out", default=None)
    p.add_argument("--only", default="", help="comma-separated case prefixes")
    args = p.parse_args()
    rows = bench_all([o for o in args.only.split(",") if o])
    text = table(rows, columns)
    print(text)
    if args.out:
        with open(os.path.join(args.out, f"bench_{name}.json"), "w") as f:
            json.dump({"mlx": mx.__version__, "rows": rows}, f, indent=1)
        with open(os.path.join(args.out, f"bench_{name}.txt"), "w") as f:
            f.write(text + "\n")
