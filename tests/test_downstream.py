"""Downstream: mlxr's fused ops patched into an mlx-lm Llama (random weights, no downloads)."""

import mlx.core as mx
import mlx.nn as nn
import numpy as np
import pytest
from mlx.utils import tree_map

import mlxr
import mlxr.fused.nn as fnn

llama = pytest.importorskip("mlx_lm.models.llama")
from mlx_lm.models.cache import make_prompt_cache  # noqa: E402

ARGS = dict(model_type="llama", hidden_size=256, num_hidden_layers=2, intermediate_size=512,
            num_attention_heads=4, num_key_value_heads=2, rms_norm_eps=1e-5, vocab_size=512)


def build(dtype):
    mx.random.seed(0)
    model = llama.Model(llama.ModelArgs(**ARGS))
    model.set_dtype(dtype)
    mx.eval(model.parameters())
    return model


def run(model, steps=3):
    """Logits of a prompt and of `steps` greedy decode steps through the KV cache (float64)."""
    cache = make_prompt_cache(model)
    prompt = mx.random.randint(0, ARGS["vocab_size"], (2, 12), key=mx.random.key(7))
    logits = [model(prompt, cache=cache)]
    for _ in range(steps):
        token = mx.argmax(logits[-1][:, -1:], axis=-1)
        logits.append(model(token, cache=cache))
    return [np.array(l.astype(mx.float32), dtype=np.float64) for l in logits]


def max_err(a, b):
    return max(np.abs(x - y).max() for x, y in zip(a, b))


@pytest.mark.parametrize("dtype", [mx.float32, mx.bfloat16])
def test_patched_llama_matches_unpatched_within_its_own_error(dtype):
    model = build(dtype)
    unpatched = run(model)
    report = mlxr.patch(model, only_certified=False)
    assert {op for _, op, _ in report.replaced} == {"rms_norm", "rope"}
    assert len(report.replaced) == 2 * ARGS["num_hidden_layers"] + 1 + ARGS["num_hidden_layers"]
    with mlxr.fused.observe() as seen:
        patched = run(model)
    assert seen.ran_kernel("cpu", "rms_norm") and seen.ran_kernel("cpu", "rope")
    # The oracle: the same weights in float64 (the patched model, whose ops are exact in float64).
    model.update(tree_map(lambda a: a.astype(mx.float64), model.parameters()))
    oracle = run(model)
    # Arbitration, as in conformance: the patched model may be at most twice as far from the
    # float64 run as MLX's own ops are, plus float32 round-off of the logits' scale.
    slack = 4 * np.finfo(np.float32).eps * max(np.abs(o).max() for o in oracle)
    assert max_err(patched, oracle) <= 2 * max_err(unpatched, oracle) + slack
    assert mlxr.unpatch(model) == report.replaced.__len__()


def test_patch_respects_ops_and_is_reversible():
    model = build(mx.float32)
    report = mlxr.patch(model, ops={"rope"}, only_certified=False)
    assert all(op == "rope" for _, op, _ in report.replaced)
    assert any("not in ops" in why for _, _, why in report.skipped)
    assert isinstance(model.layers[0].self_attn.rope, fnn.RoPE)
    assert type(model.layers[0].input_layernorm) is nn.RMSNorm
    mlxr.unpatch(model)
    assert type(model.layers[0].self_attn.rope) is nn.RoPE


def test_patch_refuses_uncertified_ops(tmp_path):
    model = build(mx.float32)
    report = mlxr.patch(model, results=str(tmp_path / "missing.json"))
    assert not report.replaced
    assert all("mlxr-conform certify" in why for _, _, why in report.skipped)


def test_patch_swaps_only_what_the_results_certify(tmp_path):
    from mlxr.conformance import results

    path = tmp_path / "results.json"
    record = dict(op="rms_norm", impl="fused", target="mlxr.fused:rms_norm", device="cpu",
                  dtype="float32", check="forward", variant="", layout="contiguous", outcome="passed")
    results.write(str(path), {"schema": results.SCHEMA, "results": [record]})
    report = mlxr.patch(build(mx.float32), results=str(path))
    assert {op for _, op, _ in report.replaced} == {"rms_norm"}
    assert all(op == "rope" or "rope" in why for _, op, why in report.skipped)


def test_state_dict_loads_unchanged():
    src, dst = nn.RMSNorm(8), fnn.RMSNorm(8)
    src.weight = mx.arange(8, dtype=mx.float32)
    dst.load_weights(list(src.parameters().items()))
    x = mx.random.normal((3, 8))
    np.testing.assert_allclose(np.array(dst(x)), np.array(src(x)), rtol=1e-6, atol=1e-6)
    assert set(fnn.LayerNorm(8).parameters()) == set(nn.LayerNorm(8).parameters())
