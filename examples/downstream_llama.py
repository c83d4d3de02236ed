"""Patch a small random-weight Llama (mlx-lm) with mlxr's fused ops and compare speed and logits.

    python examples/downstream_llama.py [--dtype bfloat16] [--layers 4] [--hidden 1024] [--no-certify-gate]

No downloads: the model is built from an mlx-lm config with random weights. Unpatched and
patched runs alternate for ``--rounds`` rounds and the best round of each counts (wall time on a
shared machine only ever errs slow).
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


CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


def generate(model, prompt, steps: int, clock=time.perf_counter):
    """Greedy decoding with a KV cache; returns (last logits, prefill tokens/s, decode tokens/s)."""
    cache = make_prompt_cache(model)
    start = clock()
    logits = model(prompt, cache=cache)
    token = mx.argmax(logits[:, -1], axis=-1, keepdims=True)
    mx.eval(token)
    prefill_tps = prompt.size / (clock() - start)
    start = clock()
    for _ in range(steps):
        logits = model(token, cache=cache)
        token = mx.argmax(logits[:, -1], axis=-1, keepdims=True)
        mx.eval(token)
    return logits, prefill_tps, steps / (clock() - start)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--dtype", default="float32", choices=["float32", "float16", "bfloat16"])
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--hidden", type=int, default=1024)
    ap.add_argument("--steps", type=int, default=32)
    ap.add_argument("--prompt", type=int, default=128, help="prompt length (prefill tokens)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--clock", choices=sorted(CLOCKS), default="wall",
                    help="cpu: process CPU time (all threads), steadier than wall time on a busy machine")
    ap.add_argument("--no-certify-gate", action="store_true", help="swap ops even without certification results")
    opts = ap.parse_args()
    clock = CLOCKS[opts.clock]
    mx.set_cache_limit(4 << 30)
    model = build(opts.hidden, opts.layers, getattr(mx, opts.dtype))
    logits = {}
    prompt = mx.random.randint(0, 4096, (1, opts.prompt), key=mx.random.key(1))
    report = mlxr.patch(model, only_certified=not opts.no_certify_gate)
    print(report)
    mlxr.unpatch(model)
    best = {"mlx": [0.0, 0.0], "mlxr": [0.0, 0.0]}
    for _ in range(opts.rounds):
        for name in ("mlx", "mlxr"):
            if name == "mlxr":
                mlxr.patch(model, only_certified=not opts.no_certify_gate)
            generate(model, prompt, 2, clock)  # warm-up
            logits[name], prefill, decode = generate(model, prompt, opts.steps, clock)
            best[name] = [max(best[name][0], prefill), max(best[name][1], decode)]
            mlxr.unpatch(model)
    diff = mx.abs(logits["mlxr"].astype(mx.float32) - logits["mlx"].astype(mx.float32)).max().item()
    (bp, bd), (fp, fd) = best["mlx"], best["mlxr"]
    print(f"{opts.dtype}, {opts.layers} layers x {opts.hidden}, best of {opts.rounds} rounds, {opts.clock} clock")
    print(f"prefill tokens/s ({opts.prompt}-token prompt): mlx {bp:.0f}, mlxr {fp:.0f} ({fp / bp:.2f}x)")
    print(f"decode tokens/s ({opts.steps} steps): mlx {bd:.1f}, mlxr {fd:.1f} ({fd / bd:.2f}x); max |logit diff| {diff:.3g}")


if __name__ == "__main__":
    main()
