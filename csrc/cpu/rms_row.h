// The two row passes of RMSNorm, shared by rms_norm and add_rms_norm (whose normed output
// must equal rms_norm(h) bitwise).
#pragma once

#include <cmath>
#include <cstdint>

#include "cpu/block.h"

namespace mlxr::cpu {

// Sum of squares in kBlock independent lanes: vector-wide, and the summation order does not
// depend on alignment or ISA, so results are bitwise reproducible.
template <typename D, typename Isa>
MLXR_INLINE typename D::acc sum_squares(const typename D::storage* x, int64_t n) {
  using Acc = typename D::acc;
  LaneSums<Acc, Isa> partial;
  int64_t i = 0;
  for (; i + kBlock <= n; i += kBlock) {
    auto v = Block<D, Isa>::load(x + i);
    partial.add_product(v, v);
  }
  Acc total = partial.sum();
  for (; i < n; ++i) {
    Acc t = D::load(x[i]);
    total += t * t;
  }
  return total;
}

// out = round(x * inv_rms) [* weight], rounding to the output dtype before the weight
// multiply as the reference does. kNoNan: x, inv_rms and weight are finite, so no value
// here is NaN (|x * inv_rms| <= sqrt(n)) and the rounding skips its NaN fix-up.
template <typename D, typename Isa, bool kWeight, bool kNoNan>
MLXR_INLINE void scale_row(
    const typename D::storage* x,
    const typename D::storage* weight,
    typename D::storage* out,
    int64_t n,
    typename D::acc inv_rms) {
  using Acc = typename D::acc;
  using B = Block<D, Isa>;
  int64_t i = 0;
  for (; i + kBlock <= n; i += kBlock) {
    auto y = B::load(x + i) * inv_rms;
    if constexpr (kWeight) {
      y = (kNoNan ? round_not_nan<D, Isa>(y) : B::round(y)) * B::load(weight + i);
    }
    if constexpr (kNoNan) {
      store_not_nan<D, Isa>(y, out + i);
    } else {
      B::store(y, out + i);
    }
  }
  for (; i < n; ++i) {
    Acc normed = D::load(x[i]) * inv_rms;
    out[i] = kWeight ? D::store(D::load(D::store(normed)) * D::load(weight[i])) : D::store(normed);
  }
}

// normed = scale_row(x) for a row whose sum of squares is sum_sq: the NaN-free rounding when
// the row and weight are finite (a finite sum of squares means every x is finite).
template <typename D, typename Isa>
MLXR_INLINE void normalise_rms_row(
    const typename D::storage* x,
    const typename D::storage* weight,
    bool weight_finite,
    typename D::storage* out,
    int64_t n,
    typename D::acc sum_sq,
    double eps) {
  using Acc = typename D::acc;
  Acc mean_sq = sum_sq / static_cast<Acc>(n);
  Acc inv_rms = Acc(1) / std::sqrt(mean_sq + static_cast<Acc>(eps));
  bool no_nan = std::isfinite(mean_sq) && std::isfinite(inv_rms) && (!weight || weight_finite);
  with_flags([&](auto has_weight, auto finite) {
    scale_row<D, Isa, decltype(has_weight)::value, decltype(finite)::value>(x, weight, out, n, inv_rms);
  }, weight != nullptr, no_nan);
}

} // namespace mlxr::cpu
