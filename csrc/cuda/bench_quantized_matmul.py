"""Times mlxr's CUDA quantized_matmul against mx.quantized_matmul (affine, group 64, transpose).

Amortised as bench_rms_norm.py times it (20 independent calls per eval, medians, the two
interleaved). Decode (M = 1) and prefill (M = 512) at 4096 x 4096 and 4096 x 11008 (K x N),
4 and 8 bits. GFLOP/s counts 2 M N K; weight GB/s counts the packed words plus scales and
biases read once (what bounds decode).
Usage: python bench_quantized_matmul.py [--out DIR] [--only decode|prefill]
"""

import mlx.core as mx

import mlxr.fused as fused
from bench_common import main
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
            "T": "T" if transpose else "N", "dtype": str(dtype).split(".")[-1],
            "ours_us": t["ours"] * 1e6, "mlx_us": t["mlx"] * 1e6,
            "ours_GFLOPs": 2 * m * n * k / t["ours"] / 1e9, "mlx_GFLOPs": 2 * m * n * k / t["mlx"] / 1e9,
            "ours_weight_GBps": w_bytes / t["ours"] / 1e9, "mlx_weight_GBps": w_bytes / t["mlx"] / 1e9,
            "speedup_vs_mlx": t["mlx"] / t["ours"]}


def bench_all(only):
    rows = []
    for m in (1, 512) if not only else [1 if o == "decode" else 512 for o in only]:
        for k, n in ((4096, 4096), (4096, 11008)):
            for bits in (4, 8):
                rows.append(row(m, k, n, bits, mx.bfloat16))
    if not only:
        rows.append(row(1, 4096, 4096, 4, mx.float32))
        rows.append(row(1, 4096, 4096, 4, mx.bfloat16, transpose=False))
        rows.append(row(512, 4096, 4096, 4, mx.bfloat16, transpose=False))
    return rows


COLUMNS = [("case", "case", "", 8), ("M", "M", "d", 5), ("K", "K", "d", 6), ("N", "N", "d", 7), ("bits", "bits", "d", 5),
           ("T", "T", "", 3), ("dtype", "dtype", "", 10), ("ours us", "ours_us", ".1f", 10), ("mlx us", "mlx_us", ".1f", 10),
           ("ours GF/s", "ours_GFLOPs", ".0f", 11), ("mlx GF/s", "mlx_GFLOPs", ".0f", 10),
           ("ours wGB/s", "ours_weight_GBps", ".0f", 11), ("mlx wGB/s", "mlx_weight_GBps", ".0f", 10),
           ("x mlx", "speedup_vs_mlx", ".2f", 7)]

if __name__ == "__main__":
    main("quantized_matmul", bench_all, COLUMNS)
