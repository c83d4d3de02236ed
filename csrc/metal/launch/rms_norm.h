// Launch plan of kernels/rms_norm.metal: one threadgroup per row.
#pragma once

#include "rows.h"

namespace mlxr::metal_launch {

// Elements per thread per pass; kReads in kernels/rms_norm.metal.
constexpr size_t kRMSNormReads = 4;

struct RMSNormQuery {
  int64_t n_rows; // rows are contiguous, axis_size elements apart
  int64_t axis_size;
  int64_t w_stride; // elements between weight entries (any sign, 0 for a broadcast)
  std::string dtype; // output dtype: float32, float16, bfloat16
  bool has_weight;
  float eps;
};

// set_bytes of eps, axis_size, w_stride and has_weight at buffers first .. first + 3 (also
// add_rms_norm's).
inline void rms_norm_bytes(Plan& p, int first, const RMSNormQuery& q) {
  p.bytes<float>(first, "eps", q.eps);
  p.bytes<uint32_t>(first + 1, "axis_size", static_cast<uint32_t>(q.axis_size));
  p.bytes<int64_t>(first + 2, "w_stride", q.w_stride);
  p.bytes<uint32_t>(first + 3, "has_weight", q.has_weight ? 1u : 0u);
}

// Buffers: 0 x (input 0), 1 weight (input 1; x when there is no weight, never read),
// 2 out (output 0), 3 eps, 4 axis_size, 5 w_stride, 6 has_weight.
// Rows that fit kRMSNormReads elements per thread in one threadgroup take the single-pass
// kernel; longer rows the looped one with the widest threadgroup.
inline Plan rms_norm_plan(const RMSNormQuery& q, const DeviceLimits& limits = {}) {
  Plan p;
  plan_rows(p, "rms_norm", q.dtype, q.n_rows, q.axis_size, kRMSNormReads, limits);
  p.input(0, 0, "x");
  p.input(1, q.has_weight ? 1 : 0, "weight");
  p.output(2, 0, "out");
  rms_norm_bytes(p, 3, q);
  return p;
}

} // namespace mlxr::metal_launch
