"""metal-sim: the Metal quantized_matmul kernels (GEMV and tiled GEMM, transpose and not) run
on the CPU simulator through the launch plans of the Metal host, against the float64 oracle;
planted kernel bugs the simulator or the oracle must catch.

Tolerances are those of tests/test_quantized_matmul.py: the codes are exact, so only the
float32 accumulation order (bounded from K and the terms' magnitudes) and one rounding to the
output dtype separate a kernel from the oracle."""

import mlx.core as mx
import numpy as np
import pytest
from test_quantized_matmul import (
    CASES,
    EPS_OUT,
    accumulation_tol,
    assert_matches_oracle,
    oracle_and_bound,
    quantized,
    rand,
    to64,
)

import mlxr.fused as fused
from mlxr import _ext
from mlxr.conformance import metal_sim
from mlxr.conformance.metal_sim import MetalSimError, executed, run_op
from mlxr.conformance.metal_sim._compile import source_root
from mlxr.conformance.metal_sim._runtime import Library, execute, poisoned
from mlxr.conformance.metal_sim.quantized_matmul import plan
from mlxr.fused._dispatch import METAL_KERNEL_DTYPES
from mlxr.reference import quantized_matmul as reference

if not metal_sim.available():
    pytest.skip("metal-sim needs g++ and the kernel sources", allow_module_level=True)

NAMES = {mx.float32: "float32", mx.float16: "float16", mx.bfloat16: "bfloat16"}
GEMV_MAX_ROWS = 8  # kQmmGemvMaxRows, csrc/metal/launch/quantized_matmul.h


def kernel(m, transpose, group_size, bits, dtype=mx.float32):
    variant = "gemv" if m <= GEMV_MAX_ROWS else "gemm"
    return f"quantized_matmul_{variant}_{'t' if transpose else 'n'}_b{bits}_g{group_size}_{NAMES[dtype]}"


def weights(n, k, transpose, group_size, bits, dtype=mx.float32):
    """mx.quantize output for an (n, k) product: w is N x K (transpose) or K x N."""
    return quantized(*((n, k) if transpose else (k, n)), group_size, bits, dtype)


def run_checked(x, wq, s, b, transpose, group_size, bits):
    """The op on metal-sim; asserts exactly one dispatch of the expected kernel."""
    m = x.size // x.shape[-1]
    name = kernel(m, transpose, group_size, bits, mx.result_type(x, s))
    before = executed[name]
    y = run_op("quantized_matmul", x, wq, s, b, transpose, group_size, bits)
    assert executed[name] == before + 1, f"{name} did not run"
    return y


# transpose: N = 40 is below 64, not a multiple of 32 and a partial GEMV block and GEMM tile;
# K = 384 ends mid-pass of the GEMV lanes (256 codes per pass). No transpose: N = 128 (a
# multiple of every group size), K = 45 leaves a partial GEMM K tile and idle GEMV lanes.
@pytest.mark.parametrize("bits,group_size,transpose", CASES)
@pytest.mark.parametrize("m", [1, 3, GEMV_MAX_ROWS, GEMV_MAX_ROWS + 1, 33])
def test_matches_oracle(bits, group_size, transpose, m):
    n, k = (40, 384) if transpose else (128, 45)
    wq, s, b = weights(n, k, transpose, group_size, bits)
    x = rand((m, k), key=m)
    y = run_checked(x, wq, s, b, transpose, group_size, bits)
    assert y.dtype == mx.float32
    assert_matches_oracle(y, x, wq, s, b, transpose, group_size, bits)


@pytest.mark.parametrize("n", [1, 3, 4, 7, 31, 33, 63, 65])
@pytest.mark.parametrize("m", [1, GEMV_MAX_ROWS + 1])
def test_output_sizes_transpose(n, m):
    # MLX's Metal qmv once wrote zeros for N < 64 and a wrong last entry for N % 32 != 0.
    wq, s, b = weights(n, 64, True, 64, 4)
    x = rand((m, 64), key=n)
    y = run_checked(x, wq, s, b, True, 64, 4)
    assert y.shape == (m, n)
    assert_matches_oracle(y, x, wq, s, b, True, 64, 4)


@pytest.mark.parametrize("k", [1, 5, 31, 32, 33, 70])
@pytest.mark.parametrize("m", [1, GEMV_MAX_ROWS + 1])
def test_inner_sizes_no_transpose(k, m):
    wq, s, b = weights(32, k, False, 32, 8)
    x = rand((m, k), key=k)
    y = run_checked(x, wq, s, b, False, 32, 8)
    assert_matches_oracle(y, x, wq, s, b, False, 32, 8)


@pytest.mark.parametrize("dtype", [mx.float16, mx.bfloat16], ids=NAMES.get)
@pytest.mark.parametrize("bits,group_size", [(4, 32), (8, 128)])
@pytest.mark.parametrize("transpose", [True, False])
@pytest.mark.parametrize("m", [1, GEMV_MAX_ROWS + 1])
def test_half_precision(dtype, bits, group_size, transpose, m):
    assert dtype in METAL_KERNEL_DTYPES["quantized_matmul"]
    wq, s, b = weights(128, 256, transpose, group_size, bits, dtype)
    x = rand((m, 256), dtype, key=m)
    y = run_checked(x, wq, s, b, transpose, group_size, bits)
    assert y.dtype == dtype
    assert_matches_oracle(y, x, wq, s, b, transpose, group_size, bits)
    # Rounded once from float32, as the reference: at most one output ulp from it.
    r = to64(reference(x, wq, s, b, transpose, group_size, bits))
    np.testing.assert_allclose(to64(y), r, rtol=2 * EPS_OUT[dtype], atol=1e-3 * np.abs(r).max())


def test_batched_x_and_promotion():
    wq, s, b = weights(24, 64, True, 64, 4)
    for shape in [(2, 3, 64), (2, 5, 64)]:  # 6 rows: GEMV; 10: GEMM
        x = rand(shape, mx.float16, key=len(shape))  # float16 x, float32 scales -> float32
        y = run_checked(x, wq, s, b, True, 64, 4)
        assert y.shape == shape[:-1] + (24,) and y.dtype == mx.float32
        assert_matches_oracle(y, x, wq, s, b, True, 64, 4)


@pytest.mark.parametrize("dtype", [mx.float32, mx.float16], ids=NAMES.get)
@pytest.mark.parametrize("m,n,k,transpose", [(1, 256, 4096, True), (1, 4096, 256, False), (40, 96, 1024, True)])
def test_model_sized_rows(dtype, m, n, k, transpose):
    # Decode-sized contractions: the float32 accumulation bound at K in the thousands (a
    # float16 accumulator would miss it by far).
    wq, s, b = weights(n, k, transpose, 64, 4, dtype)
    x = rand((m, k), dtype, key=k, scale=30.0)
    assert_matches_oracle(run_checked(x, wq, s, b, transpose, 64, 4), x, wq, s, b, transpose, 64, 4)


def test_random_shapes():
    # Shapes drawn around every block size: GEMV blocks of 8 / 64 columns, GEMM tiles of 32.
    rng = np.random.default_rng(0)
    for case in range(24):
        bits, group_size, transpose = CASES[case % len(CASES)]
        m = int(rng.integers(1, 70))
        n = int(rng.integers(1, 100)) if transpose else group_size * int(rng.integers(1, 4))
        k = group_size * int(rng.integers(1, 5)) if transpose else int(rng.integers(1, 100))
        wq, s, b = weights(n, k, transpose, group_size, bits)
        x = rand((m, k), key=case)
        assert_matches_oracle(run_checked(x, wq, s, b, transpose, group_size, bits), x, wq, s, b, transpose, group_size, bits)


def test_strided_inputs_are_copied_to_rows():
    # As the op's mx::contiguous: a transposed x and a strided w reach the kernel as rows.
    wq, s, b = weights(16, 64, True, 32, 8)
    x = rand((64, 5), key=4)
    x_view, w_view = np.array(x).T, np.repeat(np.array(wq), 2, axis=1)[:, ::2]
    assert not x_view.flags.c_contiguous and not w_view.flags.c_contiguous
    y = metal_sim.quantized_matmul.run(x_view, w_view, np.array(s), np.array(b), True, 32, 8, "float32")
    assert_matches_oracle(mx.array(y), mx.swapaxes(x, 0, 1), wq, s, b, True, 32, 8)


def test_entry_refuses_what_has_no_kernel():
    wq, s, b = weights(16, 64, True, 64, 4)
    x = rand((2, 64))
    with pytest.raises(ValueError, match="mode='affine'"):
        run_op("quantized_matmul", x, wq, s, None)
    with pytest.raises(TypeError, match="3-D w"):
        run_op("quantized_matmul", x, wq[None], s[None], b[None])
    with pytest.raises(TypeError, match="float64"):
        run_op("quantized_matmul", x.astype(mx.float64), wq, s, b)
    with pytest.raises(ValueError, match="does not fit x"):
        run_op("quantized_matmul", rand((2, 32)), wq, s, b)


def test_matches_mx_quantized_matmul():
    wq, s, b = weights(72, 256, True, 64, 4)
    for m in (2, 20):
        x = rand((m, 256), key=m)
        y, expected = run_op("quantized_matmul", x, wq, s, b), mx.quantized_matmul(x, wq, s, b)
        # Two float32 accumulation orders: each within the oracle's bound of the exact result.
        _, l2 = oracle_and_bound(x, wq, s, b, True, 64, 4)
        assert np.all(np.abs(to64(y) - to64(expected)) <= 2 * accumulation_tol(256, l2))


def test_empty_dispatches_nothing():
    before = sum(executed.values())
    wq, s, b = weights(24, 64, True, 64, 4)
    assert run_op("quantized_matmul", mx.zeros((0, 64)), wq, s, b).shape == (0, 24)
    wq, s, b = mx.zeros((0, 4), mx.uint32), mx.zeros((0, 1)), mx.zeros((0, 1))  # K = 0, N = 32
    y = run_op("quantized_matmul", mx.zeros((3, 0)), wq, s, b, False, 32, 4)
    assert y.shape == (3, 32) and not np.any(np.array(y))
    assert sum(executed.values()) == before


# ---------------------------------------------------------------- the launch plan
def test_every_plan_names_a_compiled_kernel():
    planned = {plan(m, 64, 128, t, gs, bits, NAMES[dtype]).kernel
               for m in (1, 100) for t in (True, False) for gs in (32, 64, 128) for bits in (4, 8)
               for dtype in METAL_KERNEL_DTYPES["quantized_matmul"]}
    assert len(planned) == 72 and planned <= metal_sim.library("quantized_matmul").names


@pytest.mark.parametrize("transpose", [True, False])
@pytest.mark.parametrize("m", [1, GEMV_MAX_ROWS, GEMV_MAX_ROWS + 1, 100])
def test_plan_shapes(transpose, m):
    p = plan(m, 96, 256, transpose, 64, 4, "bfloat16")
    assert p.kernel == kernel(m, transpose, 64, 4, mx.bfloat16)
    if m <= GEMV_MAX_ROWS:
        assert p.group == (64, 1, 1) and p.grid == (96 // 8 if transpose else 2, m, 1)  # 8 or 64 columns
    else:
        assert p.group == (64, 1, 1) and p.grid == (3, -(-m // 32), 1)
    assert [(a.kind, a.index, a.array) for a in p.args] == [
        ("input", 0, 0), ("input", 1, 1), ("input", 2, 2), ("input", 3, 3), ("output", 4, 0),
        ("bytes", 5, -1), ("bytes", 6, -1), ("bytes", 7, -1)]
    assert [int.from_bytes(a.payload, "little") for a in p.args[5:]] == [m, 96, 256]


# ---------------------------------------------------------------- planted bugs
# A build costs seconds of g++, so the bugs share two: the bugs of one build sit in kernels
# that the other tests of that build never dispatch (gemv_t, gemv_n, gemm_t, gemm_n).
BOUNDS_BUGS = {
    # gemv_t: columns past N are read.
    "column_guard": ("for (uint c = 0; c < kGemvTCols && n0 + c < N; ++c)", "for (uint c = 0; c < kGemvTCols; ++c)"),
    # gemm_n: rows of w past K are dequantised.
    "k_tail": ("    if (k0 + r >= K) {\n", "    if (k0 + r >= K + 16) {\n"),
    # gemv_n: the lanes stop one code early (in bounds, race-free).
    "short_k": ("for (uint k = simd_lane; k < K; k += kSimdSize)", "for (uint k = simd_lane; k + 1 < K; k += kSimdSize)"),
}
SYNC_AND_NUMERICS_BUGS = {
    # gemm_t and gemm_n: the next K step overwrites tiles other threads still read.
    "barrier": ("    threadgroup_barrier(mem_flags::mem_threadgroup);\n  }\n  for (uint a = 0;", "  }\n  for (uint a = 0;"),
    # gemv_t: the scales of group k / 32 instead of k / group_size.
    "group": ("size_t g = n * groups + k / group_size;", "size_t g = n * groups + (k / 32) % groups;"),
    # gemv_n: w_hat without its bias.
    "bias": ("acc[i * pack + j] += xk * (scale * code<bits>(word, j) + bias);", "acc[i * pack + j] += xk * scale * code<bits>(word, j);"),
}


def mutant(directory, bugs):
    """kernels/quantized_matmul.metal with planted bugs, instantiated for float32, group size
    64 and 4 bits only (a faster build); fails if a text to replace is gone."""
    source = (source_root() / "kernels" / "quantized_matmul.metal").read_text()
    for old, new in bugs.values():
        assert source.count(old) == 1, f"planted-bug anchor not found once: {old!r}"
        source = source.replace(old, new)
    head, _, _ = source.rpartition("instantiate_quantized_matmul(float32, float)")
    path = directory / "quantized_matmul.metal"
    path.write_text(head + "instantiate_qmm_shape(float32, float, 64, 4)\n")
    return Library(path)


@pytest.fixture(scope="module")
def bounds_mutant(tmp_path_factory):
    return mutant(tmp_path_factory.mktemp("bounds"), BOUNDS_BUGS)


@pytest.fixture(scope="module")
def sync_mutant(tmp_path_factory):
    return mutant(tmp_path_factory.mktemp("sync"), SYNC_AND_NUMERICS_BUGS)


def run_with(lib, m, n, k, transpose):
    """Runs a float32 problem (group size 64, 4 bits) on a mutant; returns its oracle check."""
    wq, s, b = weights(n, k, transpose, 64, 4)
    x = rand((m, k), key=3)
    out = poisoned((m, n), np.float32)
    execute(plan(m, n, k, transpose, 64, 4, "float32"), lib, [np.array(a) for a in (x, wq, s, b)], [out])
    return lambda: assert_matches_oracle(mx.array(out), x, wq, s, b, transpose, 64, 4)


NUMERICS = (AssertionError, "error .* > tol")  # in bounds and race-free: only the oracle sees it
PLANTED = {  # bug: (m, n, k, transpose), (error, match)
    # The unguarded column's scale is its first read past the end.
    "column_guard": ((1, 7, 64, True), (MetalSimError, r"gemv_t_b4_g64_float32: out-of-bounds read of buffer 'scales'")),
    # The second K tile (K = 40) would dequantise rows 40..55 of a 40-row w (8 words a row).
    "k_tail": ((9, 64, 40, False), (MetalSimError, r"gemm_n_b4_g64_float32: out-of-bounds read of buffer 'w' at element 384 \(buffer holds 320\)")),
    "short_k": ((2, 64, 45, False), NUMERICS),
    "barrier": ((9, 32, 128, True), (MetalSimError, "gemm_t_b4_g64_float32: threadgroup memory race")),
    "group": ((1, 8, 256, True), NUMERICS),
    "bias": ((2, 64, 50, False), NUMERICS),
}


@pytest.mark.parametrize("bug", sorted(PLANTED))
def test_planted_bug_is_caught(request, bug):
    lib = request.getfixturevalue("bounds_mutant" if bug in BOUNDS_BUGS else "sync_mutant")
    shape, (error, match) = PLANTED[bug]
    with pytest.raises(error, match=match):
        run_with(lib, *shape)()


# ---------------------------------------------------------------- on a Mac
@pytest.mark.skipif(_ext.gpu_kernels != "metal", reason="extension built without Metal kernels")
@pytest.mark.parametrize("bits,group_size,transpose", CASES)
@pytest.mark.parametrize("m", [1, GEMV_MAX_ROWS + 1])
def test_fused_op_on_the_metal_gpu(bits, group_size, transpose, m):
    # The same kernels through MLX's Metal runtime: the host code, mlxr.metallib, real hardware.
    n, k = (40, 384) if transpose else (128, 45)
    wq, s, b = weights(n, k, transpose, group_size, bits)
    x = rand((m, k), key=m)
    with fused.observe() as seen:
        y = fused.quantized_matmul(x, wq, s, b, transpose, group_size, bits, stream=mx.gpu)
        mx.eval(y)
    assert seen.kernels == {f"gpu:{kernel(m, transpose, group_size, bits)}": 1} and not seen.fallbacks
    assert_matches_oracle(y, x, wq, s, b, transpose, group_size, bits)
