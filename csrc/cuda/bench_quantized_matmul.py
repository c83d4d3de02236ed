"""Times mlxr's CUDA quantized_matmul against mx.quantized_matmul (affine, group 64, transpose).

Amortised as bench_rms_norm.py times it (20 independent calls per eval, medians, the two
interleaved). Decode (M = 1) and prefill (M = 512) at 4096 x 4096 and 4096 x 11008 (K x N),
4 and 8 bits. GFLOP/s counts 2 M N K; weight GB/s counts the packed words plus scales and
biases read once (what bounds decode).
Usage: python bench_quantized_matmul.py [--out DIR]
"""

import argparse
import json
import os

import mlx.core as mx

import mlxr.fused as fused
from bench_rms_norm import median_seconds  # same folder: the shared interleaved timer

GROUP = 64


def row(m, k, n, bits, dtype, transpose=True):
    w = (0.02 * mx.random.normal((n, k) if transpose else (k, n), key=mx.random.key(1))).astype(dtype)
    wq, s, b = mx.quantize(w, group_size=GROUP, bits=bits)
    x = mx.random.normal((m, k), key=mx.random.key(0)).astype(dtype)
    mx.eval(wq, s, b, x)
    fns = {
        "ours": lambda a: fused.quantized_matmul(a, wq, s, b, transpose, GROUP, bits),
        "mlx": lambda a: mx.quantized_matmul(a, wq, s, b, transpose, GROUP, bits),
    }
    t = median_seconds(fns, x, reps=15 if m > 1 else 51)
    w_bytes = wq.size * 4 + (s.size + b.size) * s.itemsize
    mx.clear_cache()
    return {"case": "decode" if m == 1 else "prefill", "M": m, "K": k, "N": n, "bits": bits,
            "transpose": transpose, "dtype": str(dtype).split(".")[-1],
            "ours_us": t["ours"] * 1e6, "mlx_us": t["mlx"] * 1e6,
            "ours_GFLOPs": 2 * m * n * k / t["ours"] / 1e9, "mlx_GFLOPs": 2 * m * n * k / t["mlx"] / 1e9,
            "ours_weight_GBps": w_bytes / t["ours"] / 1e9, "mlx_weight_GBps": w_bytes / t["mlx"] / 1e9,
            "speedup_vs_mlx": t["mlx"] / t["ours"]}


def bench_all():
    rows = []
    for m in (1, 512):
        for k, n in ((4096, 4096), (4096, 11008)):
            for bits in (4, 8):
                rows.append(row(m, k, n, bits, mx.bfloat16))
    rows.append(row(1, 4096, 4096, 4, mx.float32))
    rows.append(row(1, 4096, 4096, 4, mx.bfloat16, transpose=False))
    rows.append(row(512, 4096, 4096, 4, mx.bfloat16, transpose=False))
    return rows


def table(rows):
    lines = [f"{'case':<9}{'MxKxN':<16}{'bits':>5}{'T':>3}{'dtype':>10}{'ours us':>10}{'mlx us':>10}"
             f"{'ours GF/s':>11}{'mlx GF/s':>10}{'ours wGB/s':>11}{'mlx wGB/s':>10}{'x mlx':>7}"]
    for r in rows:
        lines.append(f"{r['case']:<9}{r['M']}x{r['K']}x{r['N']:<{15 - len(str(r['M'])) - len(str(r['K']))}}"
                     f"{r['bits']:>5}{'T' if r['transpose'] else 'N':>3}{r['dtype']:>10}{r['ours_us']:>10.1f}"
                     f"{r['mlx_us']:>10.1f}{r['ours_GFLOPs']:>11.0f}{r['mlx_GFLOPs']:>10.0f}"
                     f"{r['ours_weight_GBps']:>11.0f}{r['mlx_weight_GBps']:>10.0f}{r['speedup_vs_mlx']:>7.2f}")
    return "\n".join(lines)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--out", default=None)
    args = p.parse_args()
    text = table(rows := bench_all())
    print(text)
    if args.out:
        with open(os.path.join(args.out, "bench_quantized_matmul.json"), "w") as f:
            json.dump({"mlx": mx.__version__, "rows": rows}, f, indent=1)
        with open(os.path.join(args.out, "bench_quantized_matmul.txt"), "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
