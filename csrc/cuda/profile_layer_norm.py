"""One call each of layer_norm with weight and bias on 32768 x 4096, ours then mx.fast, bf16 then
f32, for Nsight Compute (run_h100.sh profile with PROFILE_OP=layer_norm)."""

import mlx.core as mx

import mlxr.fused as fused


def main():
    for dtype in (mx.bfloat16, mx.float32):
        x = mx.random.normal((32768, 4096)).astype(dtype)
        w = mx.random.normal((4096,)).astype(dtype)
        b = mx.random.normal((4096,)).astype(dtype)
        mx.eval(x, w, b)
        mx.eval(fused.layer_norm(x, w, b, 1e-5))
        mx.eval(mx.fast.layer_norm(x, w, b, 1e-5))
    mx.synchronize()


if __name__ == "__main__":
    main()
