"""The C++ hot paths (csrc/bindings/hot_path.h): each fused op's common call is taken in C++
and must give what the Python path gives; anything unusual must be left to the Python path
(None), which then validates, promotes or falls back as before.

The Python path is forced by passing the default stream explicitly (the hot path only takes
stream=None).
"""

import mlx.core as mx
import numpy as np
import pytest

import mlxr.fused as fused
from mlxr import _ext
from mlxr.fused import _dispatch
from mlxr.reference import add_rms_norm as ref_add_rms_norm
from mlxr.reference import layer_norm as ref_layer_norm
from mlxr.reference import rms_norm as ref_rms_norm
from mlxr.reference import softmax as ref_softmax
from mlxr.reference import swiglu as ref_swiglu
from mlxr.reference.rope import rope_rotate

D = 64


def device():
    """'cpu' or 'gpu': the default device a test runs on (tests/conftest.py sets it per module)."""
    return "cpu" if mx.default_device().type == mx.cpu else "gpu"


def arr(shape, dtype=mx.float32, key=0):
    return mx.random.normal(shape, key=mx.random.key(key)).astype(dtype)


X, W, B = arr((3, 5, D)), arr((D,), key=1), arr((D,), key=2)
R = arr((3, 5, D), key=3)
ROPE_KW = dict(traditional=False, base=10000.0, scale=1.0, offset=7)

# op: (fused call, hot call with the same arguments)
COMMON = {
    "rms_norm": (lambda **s: fused.rms_norm(X, W, 1e-5, **s), lambda: _ext.rms_norm_hot(X, W, 1e-5, ref_rms_norm)),
    "layer_norm": (
        lambda **s: fused.layer_norm(X, W, B, 1e-5, **s),
        lambda: _ext.layer_norm_hot(X, W, B, 1e-5, ref_layer_norm),
    ),
    "add_rms_norm": (
        lambda **s: fused.add_rms_norm(X, R, None, 1e-6, **s),
        lambda: _ext.add_rms_norm_hot(X, R, None, 1e-6, ref_add_rms_norm),
    ),
    "softmax": (lambda **s: fused.softmax(X, -1, **s), lambda: _ext.softmax_hot(X, -1, False, ref_softmax)),
    "swiglu": (lambda **s: fused.swiglu(X, R, **s), lambda: _ext.swiglu_hot(X, R, ref_swiglu)),
    "rope": (
        lambda **s: fused.rope(X, 32, **ROPE_KW, **s),
        lambda: _ext.rope_hot(X, 32, False, 10000.0, 1.0, 7, rope_rotate),
    ),
}


def flat(out):
    return [np.array(o) for o in (out if isinstance(out, tuple) else (out,))]


@pytest.mark.parametrize("op", COMMON)
def test_common_call_is_taken_in_cpp_and_equals_the_python_path(op):
    call, hot = COMMON[op]
    call()  # rope: the Python path hands its base frequencies to the hot path on first use
    taken = hot()
    assert taken is not None, f"{op}: the hot path refused the plainest call"
    explicit = call(stream=mx.default_stream(mx.default_device()))
    with fused.observe() as seen:
        mx.eval(taken)
    assert seen.ran_kernel(device(), op) and not seen.fallbacks, seen
    for a, b in zip(flat(taken), flat(explicit)):
        np.testing.assert_array_equal(a, b)


# Arguments the hot path must leave to Python: promotion, casts, other kinds of number,
# invalid values (the Python path raises), shapes it does not handle.
HALF_W = W.astype(mx.float16)
REFUSED = [
    ("rms_norm", lambda: _ext.rms_norm_hot(X, HALF_W, 1e-5, ref_rms_norm)),  # promotion
    ("rms_norm", lambda: _ext.rms_norm_hot(X, W, True, ref_rms_norm)),  # bool eps
    ("rms_norm", lambda: _ext.rms_norm_hot(X, W, np.float32(1e-5), ref_rms_norm)),  # NumPy scalar
    ("rms_norm", lambda: _ext.rms_norm_hot(X, W, -1.0, ref_rms_norm)),  # invalid eps
    ("rms_norm", lambda: _ext.rms_norm_hot(X, W, float("nan"), ref_rms_norm)),
    ("rms_norm", lambda: _ext.rms_norm_hot(X, arr((D + 1,)), 1e-5, ref_rms_norm)),  # wrong shape
    ("rms_norm", lambda: _ext.rms_norm_hot(np.ones((2, D)), None, 1e-5, ref_rms_norm)),  # not an array
    ("rms_norm", lambda: _ext.rms_norm_hot(mx.array(1.0), None, 1e-5, ref_rms_norm)),  # 0-d
    ("rms_norm", lambda: _ext.rms_norm_hot(X.astype(mx.int32), None, 1e-5, ref_rms_norm)),  # no kernel
    ("layer_norm", lambda: _ext.layer_norm_hot(X, W, HALF_W, 1e-5, ref_layer_norm)),
    ("layer_norm", lambda: _ext.layer_norm_hot(X, W, arr((2, D)), 1e-5, ref_layer_norm)),
    ("add_rms_norm", lambda: _ext.add_rms_norm_hot(X, R[:2], None, 1e-5, ref_add_rms_norm)),  # shape
    ("add_rms_norm", lambda: _ext.add_rms_norm_hot(X, R.astype(mx.float16), None, 1e-5, ref_add_rms_norm)),
    ("softmax", lambda: _ext.softmax_hot(X, 1, False, ref_softmax)),  # not the last axis
    ("softmax", lambda: _ext.softmax_hot(X, [-1], False, ref_softmax)),
    ("softmax", lambda: _ext.softmax_hot(X, -1, 1, ref_softmax)),  # precise must be a bool
    ("swiglu", lambda: _ext.swiglu_hot(X, R[0], ref_swiglu)),  # broadcasting
    ("swiglu", lambda: _ext.swiglu_hot(X, R.astype(mx.bfloat16), ref_swiglu)),
    ("rope", lambda: _ext.rope_hot(X, 33, False, 10000.0, 1.0, 7, rope_rotate)),  # odd dims
    ("rope", lambda: _ext.rope_hot(X, 2 * D, False, 10000.0, 1.0, 7, rope_rotate)),  # dims > D
    ("rope", lambda: _ext.rope_hot(X, 32, 1, 10000.0, 1.0, 7, rope_rotate)),  # traditional not a bool
    ("rope", lambda: _ext.rope_hot(X, 32, False, -1.0, 1.0, 7, rope_rotate)),  # base <= 0
    ("rope", lambda: _ext.rope_hot(X, 32, False, 10000.0, float("inf"), 7, rope_rotate)),
    ("rope", lambda: _ext.rope_hot(X, 32, False, 10000.0, 1.0, 2**31, rope_rotate)),  # int32 offset
    ("rope", lambda: _ext.rope_hot(X, 32, False, 10000.0, 1.0, mx.array([1, 2]), rope_rotate)),  # 2 of 3
    ("rope", lambda: _ext.rope_hot(X, 32, False, 10000.0, 1.0, mx.array([1, 2, 3], mx.int64), rope_rotate)),
    ("rope", lambda: _ext.rope_hot(X, 32, False, 12345.5, 1.0, 7, rope_rotate)),  # frequencies not built yet
    ("rope", lambda: _ext.rope_hot(X.astype(mx.float64, stream=mx.cpu), 32, False, 10000.0, 1.0, 7, rope_rotate)),
]


@pytest.mark.parametrize("case", range(len(REFUSED)))
def test_unusual_arguments_are_left_to_python(case):
    op, hot = REFUSED[case]
    assert hot() is None, f"{op}: case {case} was taken by the hot path"


def test_invalid_arguments_still_raise_the_python_errors():
    with pytest.raises(ValueError, match=r"\[rms_norm\] eps must be finite"):
        fused.rms_norm(X, W, -1.0)
    with pytest.raises(ValueError, match=r"\[rope\] dims must be even"):
        fused.rope(X, 33, **ROPE_KW)
    with pytest.raises(ValueError, match=r"\[add_rms_norm\] residual must have shape"):
        fused.add_rms_norm(X, R[:2], None, 1e-5)


def test_rope_accepts_per_sequence_int32_offsets_and_int_parameters():
    fused.rope(X, 32, **ROPE_KW)
    off = mx.array([1, 5, 9], mx.int32)
    taken = _ext.rope_hot(X, 32, True, 10000, 2, off, rope_rotate)
    assert taken is not None
    explicit = fused.rope(X, 32, traditional=True, base=10000, scale=2, offset=off,
                          stream=mx.default_stream(mx.default_device()))
    np.testing.assert_array_equal(np.array(taken), np.array(explicit))


def test_hot_path_follows_the_kernel_tables():
    # A dtype the tables do not list goes to the Python path (and so to the reference).
    try:
        _ext.set_kernel_dtypes("rms_norm", device() == "gpu", [mx.float16])
        assert _ext.rms_norm_hot(X, W, 1e-5, ref_rms_norm) is None
    finally:
        table = _dispatch.CPU_KERNEL_DTYPES if device() == "cpu" else _dispatch.GPU_KERNEL_DTYPES
        _ext.set_kernel_dtypes("rms_norm", device() == "gpu", list(table["rms_norm"]))
    assert _ext.rms_norm_hot(X, W, 1e-5, ref_rms_norm) is not None
