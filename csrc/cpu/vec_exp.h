// exp over a block, vectorised on every ISA: libm's expf is scalar (glibc's vector variants need
// -ffast-math), and exp is the whole cost of softmax and SwiGLU on the CPU.
#pragma once

#include <cmath>

#include "cpu/block.h"

namespace mlxr::cpu {

using VecI32 = Vec<int32_t>;

// exp(x) = 2^n * exp(r), n = round(x / ln2), |r| <= ln2 / 2; Cephes' degree-6 polynomial for
// exp(r) (about 1 ulp). 2^n is applied as two halves so that every n the clamp allows stays a
// normal float: overflow to +inf and gradual underflow to 0 then come out of the final multiply.
// NaN propagates (the clamps are comparisons that keep x when it is NaN).
MLXR_INLINE Vec<float> exp_block(Vec<float> x) {
  x = x < -104.0f ? broadcast<Vec<float>>(-104.0f) : x; // exp(-104) rounds to 0
  x = x > 89.0f ? broadcast<Vec<float>>(89.0f) : x; // exp(89) rounds to +inf
  const float round_magic = 12582912.0f; // 1.5 * 2^23: adding it rounds to an integer
  Vec<float> shifted = x * 1.44269504088896341f + round_magic;
  Vec<float> n = shifted - round_magic;
  Vec<float> r = x - n * 0.693359375f; // ln2 split in two so r is exact
  r = r - n * -2.12194440e-4f;
  Vec<float> p = broadcast<Vec<float>>(1.9875691500e-4f);
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * (r * r) + r + 1.0f;
  VecI32 ni = reinterpret_cast<VecI32&>(shifted) - 0x4B400000; // bits of round_magic
  VecI32 half = ni >> 1;
  VecI32 e1 = (half + 127) << 23;
  VecI32 e2 = (ni - half + 127) << 23;
  return p * reinterpret_cast<Vec<float>&>(e1) * reinterpret_cast<Vec<float>&>(e2);
}

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

MLXR_INLINE Vec<double> exp_nonpositive(Vec<double> x);

// float64 blocks (the oracle dtype) use libm: exactness matters there, speed does not.
MLXR_INLINE Vec<double> exp_block(Vec<double> x) {
  for (int j = 0; j < kBlock; ++j) {
    x[j] = std::exp(x[j]);
  }
  return x;
}

MLXR_INLINE Vec<double> exp_nonpositive(Vec<double> x) {
  return exp_block(x);
}

// A block of the first `n` (< kBlock) elements of `src`, the rest set to `fill`.
template <typename D, typename Isa>
MLXR_INLINE Vec<typename D::acc> load_partial(
    const typename D::storage* src, int64_t n, typename D::acc fill) {
  typename D::storage tmp[kBlock];
  for (int j = 0; j < kBlock; ++j) {
    tmp[j] = j < n ? src[j] : D::store(fill);
  }
  return Block<D, Isa>::load(tmp);
}

// Stores the first `n` (< kBlock) lanes of `v`, rounded exactly as a full block store rounds.
template <typename D, typename Isa>
MLXR_INLINE void store_partial(Vec<typename D::acc> v, typename D::storage* dst, int64_t n) {
  typename D::storage tmp[kBlock];
  Block<D, Isa>::store(v, tmp);
  for (int64_t j = 0; j < n; ++j) {
    dst[j] = tmp[j];
  }
}

} // namespace mlxr::cpu
