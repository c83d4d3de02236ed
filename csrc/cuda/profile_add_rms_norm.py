"""One decode-sized call (8 x 4096) each of add_rms_norm, ours then `x + r` with
mx.fast.rms_norm, bf16 then f32, for Nsight Compute (run_h100.sh profile with
PROFILE_OP=add_rms_norm PROFILE_REGEX='rms_norm|binary'): kernel durations of our one kernel
against MLX's two."""

import mlx.core as mx

import mlxr.fused as fused


def main():
    for dtype in (mx.bfloat16, mx.float32):
        x, r = (mx.random.normal((8, 4096)).astype(dtype) for _ in range(2))
        w = mx.random.normal((4096,)).astype(dtype)
        mx.eval(x, r, w)
        mx.eval(fused.add_rms_norm(x, r, w, 1e-5))
        h = x + r
        mx.eval(mx.fast.rms_norm(h, w, 1e-5), h)
    mx.synchronize()


if __name__ == "__main__":
    main()
