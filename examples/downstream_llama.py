"""Patch a small random-weight Llama (mlx-lm) with mlxr's fused ops and compare speed and logits.

    python examples/downstream_llama.py [--dtype bfloat16] [--layers 4] [--hidden 1024] [--no-certify-gate]

No downloads: the model is built from an mlx-lm config with random weights.
"""

import argparse
import time

import mlx.core as mx
from mlx_lm.models import llama
from mlx_lm.models.cache import make_prompt_cache

import mlxr


def build(hidden: int, layers: int, dtype) -> llama.Model:
    args = llama.ModelArgs(
        model_type="llama", hidden_size=hidden, num_hidden_layers=layers, intermediate_size=hidden * 8 // 3,
        num_attention_heads=max(1, hidden // 128), num_key_value_heads=max(1, hidden // 256),
        rms_norm_eps=1e-5, vocab_size=4096,
    )
    mx.random.seed(0)
    model = llama.Model(args)
    model.set_dtype(dtype)
    mx.eval(model.parameters())
    return model


def generate(model, prompt, steps: int):
    """Greedy decoding with a KV cache; returns (last logits, decode tokens/s)."""
    cache = make_prompt_cache(model)
    logits = model(prompt, cache=cache)
    token = mx.argmax(logits[:, -1], axis=-1, keepdims=True)
    mx.eval(token)
    start = time.perf_counter()
    for _ in range(steps):
        logits = model(token, cache=cache)
        token = mx.argmax(logits[:, -1], axis=-1, keepdims=True)
        mx.eval(token)
    return logits, steps / (time.perf_counter() - start)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--dtype", default="float32", choices=["float32", "float16", "bfloat16"])
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--hidden", type=int, default=1024)
    ap.add_argument("--steps", type=int, default=32)
    ap.add_argument("--no-certify-gate", action="store_true", help="swap ops even without certification results")
    opts = ap.parse_args()
    mx.set_cache_limit(4 << 30)
    model = build(opts.hidden, opts.layers, getattr(mx, opts.dtype))
    prompt = mx.random.randint(0, 4096, (1, 64), key=mx.random.key(1))
    generate(model, prompt, 4)  # warm-up
    base_logits, base_tps = generate(model, prompt, opts.steps)
    report = mlxr.patch(model, only_certified=not opts.no_certify_gate)
    print(report)
    generate(model, prompt, 4)
    fused_logits, fused_tps = generate(model, prompt, opts.steps)
    diff = mx.abs(fused_logits.astype(mx.float32) - base_logits.astype(mx.float32)).max().item()
    print(f"decode tokens/s: mlx {base_tps:.1f}, mlxr {fused_tps:.1f} ({fused_tps / base_tps:.2f}x); max |logit diff| {diff:.3g}")


if __name__ == "__main__":
    main()
