"""One call each of rope on (1, 32, 8192, 128), ours then mx.fast then a copy of the same bytes
(mx.negative), bf16 then f32, then float32 decode (1 and 32 tokens), for Nsight Compute (run_h100.sh profile with PROFILE_OP=rope
PROFILE_REGEX='Rope|rope|unary')."""

import mlx.core as mx

import mlxr.fused as fused


def main():
    for dtype in (mx.bfloat16, mx.float32):
        x = mx.random.normal((1, 32, 8192, 128)).astype(dtype)
        mx.eval(x)
        kw = dict(traditional=False, base=10000.0, scale=1.0, offset=0)
        mx.eval(fused.rope(x, 128, **kw))
        mx.eval(mx.fast.rope(x, 128, **kw))
        mx.eval(mx.negative(x))
    for batch in (1, 32):  # decode: one token a sequence, per-sequence offsets
        x = mx.random.normal((batch, 32, 1, 128))
        off = mx.arange(batch, dtype=mx.int32) * 37 + 100
        mx.eval(x, off)
        kw = dict(traditional=False, base=10000.0, scale=1.0, offset=off)
        mx.eval(fused.rope(x, 128, **kw))
        mx.eval(mx.fast.rope(x, 128, **kw))
    mx.synchronize()


if __name__ == "__main__":
    main()
