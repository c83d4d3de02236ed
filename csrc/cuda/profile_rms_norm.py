"""One call each of the large and transposed cases, for Nsight Compute (run_h100.sh profile).

Kernel order: ours bf16, mx.fast bf16, ours f32, mx.fast f32, ours transposed bf16, ours
transposed f32 (mx.fast's transposed calls copy first; its rms_norm kernel is then the plain
one already listed).
"""

import mlx.core as mx

import mlxr.fused as fused


def main():
    for dtype in (mx.bfloat16, mx.float32):
        x = mx.random.normal((65536, 4096)).astype(dtype)
        w = mx.random.normal((4096,)).astype(dtype)
        mx.eval(x, w)
        mx.eval(fused.rms_norm(x, w, 1e-5))
        mx.eval(mx.fast.rms_norm(x, w, 1e-5))
    for dtype in (mx.bfloat16, mx.float32):
        xt = mx.random.normal((4096, 65536)).astype(dtype).T
        w = mx.random.normal((4096,)).astype(dtype)
        mx.eval(xt, w)
        mx.eval(fused.rms_norm(xt, w, 1e-5))
    mx.synchronize()


if __name__ == "__main__":
    main()
