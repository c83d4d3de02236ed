// exp over a block, vectorised on every ISA: libm's expf is scalar (glibc's vector
// variants need -ffast-math), and exp is the bulk of softmax's and SwiGLU's CPU cost.
#pragma once

#include <cmath>
#include <type_traits>

#include "cpu/block.h"

namespace mlxr::cpu {

using VecI32 = Vec<int32_t>;

// exp(x) for x <= 0 (or NaN), the case of softmax and sigmoid, in ~16 vector ops instead of
// ~24: no overflow to handle, one 2^n factor, and results below 2^-126 (x < -87.33) flush to
// exactly 0 (so exp(-inf) = 0) instead of going through subnormals.
MLXR_INLINE Vec<float> exp_nonpositive(Vec<float> x) {
  // Adding 1.5 * 2^23 + 127 rounds x / ln2 to an integer n whose low mantissa bits hold n + 127.
  const float round_magic = 12582912.0f + 127.0f;
  Vec<float> shifted = x * 1.44269504088896341f + round_magic;
  Vec<float> n = shifted - round_magic;
  Vec<float> r = x - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  Vec<float> p = broadcast<Vec<float>>(1.9875691500e-4f);
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * (r * r) + r + 1.0f;
  VecI32 scale = reinterpret_cast<VecI32&>(shifted) << 23; // (n + 127) << 23 = 2^n
  Vec<float> result = p * reinterpret_cast<Vec<float>&>(scale);
  return x < -87.33654f ? Vec<float>{} : result; // NaN fails the test and stays NaN
}

// 2^t for t <= 0 (or NaN), for results that are rounded to float16/bfloat16: a degree-5
// polynomial on the fraction (1.7e-7 relative error, ~1 % of a half ulp) and no Cody-Waite
// reduction, ~40 % fewer FMA-port ops than exp_nonpositive. t < -126 flushes to exactly 0.
MLXR_INLINE Vec<float> exp2_nonpositive(Vec<float> t) {
  const float round_magic = 12582912.0f + 127.0f; // as in exp_nonpositive
  Vec<float> shifted = t + round_magic;
  Vec<float> f = t - (shifted - round_magic); // in [-0.5, 0.5]
  Vec<float> p = broadcast<Vec<float>>(1.3400432653725147e-3f);
  p = p * f + 9.676037356257439e-3f;
  p = p * f + 5.550327152013779e-2f;
  p = p * f + 2.402210682630539e-1f;
  p = p * f + 6.931471824645996e-1f;
  p = p * f + 1.0000001192092896f;
  VecI32 scale = reinterpret_cast<VecI32&>(shifted) << 23;
  Vec<float> result = p * reinterpret_cast<Vec<float>&>(scale);
  return t < -126.0f ? Vec<float>{} : result;
}

constexpr float kLog2e = 1.44269504088896341f;

// float64 blocks (the oracle dtype) use libm: exactness matters there, speed does not.
MLXR_INLINE Vec<double> exp_nonpositive(Vec<double> x) {
  for (int j = 0; j < kBlock; ++j) {
    x[j] = std::exp(x[j]);
  }
  return x;
}

// -|v| as one OR of the sign bit (a compare and a blend otherwise); NaN stays NaN.
template <typename V>
MLXR_INLINE V negative_abs(V v) {
  using Lane = std::remove_reference_t<decltype(v[0])>;
  using Bits = Vec<std::conditional_t<sizeof(Lane) == 4, uint32_t, uint64_t>>;
  Bits bits = reinterpret_cast<Bits&>(v) | (Bits{} + (decltype(Bits{}[0])(1) << (8 * sizeof(Lane) - 1)));
  return reinterpret_cast<V&>(bits);
}

// Block loads/stores for softmax and SwiGLU: Block, plus an AVX-512 bfloat16 conversion (GCC
// splits the generic one into 256-bit halves and a permute). Same rounding as Block<BF16>.
template <typename D, typename Isa>
struct IoBlock : Block<D, Isa> {
  // For values known not to be NaN (bfloat16 then skips its NaN fix-up).
  static MLXR_INLINE void store_not_nan(Vec<typename D::acc> v, typename D::storage* dst) {
    cpu::store_not_nan<D, Isa>(v, dst);
  }
};

#ifdef MLXR_X86_DISPATCH
template <>
struct IoBlock<BF16, IsaAvx512> {
  using V = Vec<float>;
  MLXR_TARGET_AVX512 static inline V load(const uint16_t* src) {
    __m512i wide = _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(src)));
    return V(_mm512_castsi512_ps(_mm512_slli_epi32(wide, 16)));
  }
  MLXR_TARGET_AVX512 static inline __m512i round(V v) {
    __m512i u = _mm512_castps_si512(__m512(v));
    __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
    return _mm512_srli_epi32(_mm512_add_epi32(_mm512_add_epi32(u, _mm512_set1_epi32(0x7FFF)), lsb), 16);
  }
  MLXR_TARGET_AVX512 static inline void store(V v, uint16_t* dst) {
    __mmask16 is_nan = _mm512_cmp_ps_mask(__m512(v), __m512(v), _CMP_UNORD_Q);
    __m512i rounded = _mm512_mask_mov_epi32(round(v), is_nan, _mm512_set1_epi32(0x7FC0));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst), _mm512_cvtepi32_epi16(rounded));
  }
  MLXR_TARGET_AVX512 static inline void store_not_nan(V v, uint16_t* dst) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst), _mm512_cvtepi32_epi16(round(v)));
  }
};
#endif

// Horizontal max and sum as 4-step trees (the scalar loops in block.h are a 16-deep dependency
// chain, which short rows pay once per row). The order is fixed, so results are reproducible.
#define MLXR_TREE_STEP(v, op, ...) v = op(v, __builtin_shufflevector(v, v, __VA_ARGS__))
template <typename V, typename Op>
MLXR_INLINE auto tree_reduce(V v, Op op) {
  static_assert(kBlock == 16, "the shuffles below are written for 16 lanes");
  MLXR_TREE_STEP(v, op, 8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7);
  MLXR_TREE_STEP(v, op, 4, 5, 6, 7, 0, 1, 2, 3, 12, 13, 14, 15, 8, 9, 10, 11);
  MLXR_TREE_STEP(v, op, 2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13);
  MLXR_TREE_STEP(v, op, 1, 0, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10, 13, 12, 15, 14);
  return v[0];
}
#undef MLXR_TREE_STEP

template <typename V>
MLXR_INLINE auto tree_max(V v) {
  return tree_reduce(v, [](V a, V b) { return a > b ? a : b; });
}

template <typename V>
MLXR_INLINE auto tree_sum(V v) {
  return tree_reduce(v, [](V a, V b) { return a + b; });
}

// A block of the first `n` (< kBlock) elements of `src`, the rest set to `fill`.
template <typename D, typename Isa>
MLXR_INLINE Vec<typename D::acc> load_partial(
    const typename D::storage* src, int64_t n, typename D::acc fill) {
  typename D::storage tmp[kBlock];
  for (int j = 0; j < kBlock; ++j) {
    tmp[j] = j < n ? src[j] : D::store(fill);
  }
  return IoBlock<D, Isa>::load(tmp);
}

// Stores the first `n` (< kBlock) lanes of `v`, rounded exactly as a full block store rounds.
template <typename D, typename Isa>
MLXR_INLINE void store_partial(Vec<typename D::acc> v, typename D::storage* dst, int64_t n) {
  typename D::storage tmp[kBlock];
  IoBlock<D, Isa>::store(v, tmp);
  for (int64_t j = 0; j < n; ++j) {
    dst[j] = tmp[j];
  }
}

} // namespace mlxr::cpu
