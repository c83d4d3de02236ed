"""Large inputs split their rows over the CPU worker pool: the bits must not depend on it.

Each op runs on inputs big enough to be split (cpu/parallel_rows.h: 512 KiB a task), once in
this process (every core) and once in a child with MLXR_NUM_THREADS=1, and the outputs must be
bitwise equal: rows are independent and each is computed by the same code on any thread.
"""

import os
import subprocess
import sys

import numpy as np
import pytest

CASES = r"""
import mlx.core as mx
import mlxr.fused as fused

def outputs():
    out = {}
    for t in (mx.float32, mx.float16, mx.bfloat16):
        x = (3 * mx.random.normal((515, 1031), key=mx.random.key(0))).astype(t)
        r = mx.random.normal((515, 1031), key=mx.random.key(1)).astype(t)
        w = mx.random.normal((1031,), key=mx.random.key(2)).astype(t)
        q = mx.random.normal((2, 8, 257, 64), key=mx.random.key(3)).astype(t)
        name = str(t).split(".")[-1]
        out["rms_norm_" + name] = fused.rms_norm(x, w, 1e-5)
        out["layer_norm_" + name] = fused.layer_norm(x, w, r[0], 1e-5)
        normed, h = fused.add_rms_norm(x, r, w, 1e-5)
        out["add_rms_norm_" + name], out["add_rms_norm_h_" + name] = normed, h
        out["softmax_" + name] = fused.softmax(x)
        out["softmax_axis0_" + name] = fused.softmax(x, axis=0)
        out["swiglu_" + name] = fused.swiglu(x, r)
        out["swiglu_transposed_" + name] = fused.swiglu(x.T, r.T)
        out["rope_" + name] = fused.rope(q, 64, traditional=False, base=10000.0, scale=1.0, offset=3)
        out["rope_transposed_" + name] = fused.rope(q.transpose(0, 2, 1, 3), 32, traditional=True,
                                                    base=10000.0, scale=1.0, offset=0)
    bits = {2: mx.uint16, 4: mx.uint32}
    return {k: np.array(v.view(bits[v.dtype.size])) for k, v in out.items()}
"""


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="one core: every run is single-threaded")
def test_outputs_do_not_depend_on_the_thread_count(tmp_path):
    namespace = {"np": np}
    exec(CASES, namespace)
    threaded = namespace["outputs"]()
    path = tmp_path / "single.npz"
    child = CASES + f"\nnp.savez({str(path)!r}, **outputs())\n"
    env = {**os.environ, "MLXR_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", "import numpy as np\n" + child], env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    single = np.load(path)
    assert sorted(single.files) == sorted(threaded)
    differ = [k for k in single.files if not np.array_equal(single[k], threaded[k])]
    assert not differ, f"threaded outputs differ from single-threaded: {differ}"
