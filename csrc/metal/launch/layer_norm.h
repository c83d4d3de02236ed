// Launch plan of kernels/layer_norm.metal: one threadgroup per row.
#pragma once

#include "rows.h"

namespace mlxr::metal_launch {

// Elements per thread per pass; kReads in kernels/layer_norm.metal.
constexpr size_t kLayerNormReads = 4;

struct LayerNormQuery {
  int64_t n_rows; // rows are contiguous, axis_size elements apart
  int64_t axis_size;
  int64_t w_stride; // elements between weight entries (any sign, 0 for a broadcast)
  int64_t b_stride; // the same for the bias
  std::string dtype; // output dtype: float32, float16, bfloat16
  bool has_weight;
  bool has_bias;
  float eps;
};

// Buffers: 0 x (input 0), 1 weight (input 1; x when there is no weight, never read),
// 2 bias (the input after the weight; x when there is no bias, never read), 3 out (output 0),
// 4 eps, 5 axis_size, 6 w_stride, 7 b_stride, 8 has_weight, 9 has_bias. Single-pass or
// looped kernel by row length (plan_rows).
inline Plan layer_norm_plan(const LayerNormQuery& q, const DeviceLimits& limits = {}) {
  Plan p;
  plan_rows(p, "layer_norm", q.dtype, q.n_rows, q.axis_size, kLayerNormReads, limits);
  p.input(0, 0, "x");
  p.input(1, q.has_weight ? 1 : 0, "weight");
  p.input(2, q.has_bias ? (q.has_weight ? 2 : 1) : 0, "bias");
  p.output(3, 0, "out");
  p.bytes<float>(4, "eps", q.eps);
  p.bytes<uint32_t>(5, "axis_size", static_cast<uint32_t>(q.axis_size));
  p.bytes<int64_t>(6, "w_stride", q.w_stride);
  p.bytes<int64_t>(7, "b_stride", q.b_stride);
  p.bytes<uint32_t>(8, "has_weight", q.has_weight ? 1u : 0u);
  p.bytes<uint32_t>(9, "has_bias", q.has_bias ? 1u : 0u);
  return p;
}

} // namespace mlxr::metal_launch
