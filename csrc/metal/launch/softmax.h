// Launch plan of kernels/softmax.metal: one threadgroup per row.
#pragma once

#include "rows.h"

namespace mlxr::metal_launch {

// Elements per thread per pass; kReads in kernels/softmax.metal.
constexpr size_t kSoftmaxReads = 4;

struct SoftmaxQuery {
  int64_t n_rows; // rows are contiguous, axis_size elements apart
  int64_t axis_size; // the softmax axes, flattened
  std::string dtype; // float32, float16, bfloat16
};

// Buffers: 0 x (input 0), 1 out (output 0), 2 axis_size.
// Rows that fit kSoftmaxReads elements per thread in one threadgroup take the single-pass
// kernel (x read once); longer rows the looped one (online max and sum, then a writing pass).
inline Plan softmax_plan(const SoftmaxQuery& q, const DeviceLimits& limits = {}) {
  Plan p;
  plan_rows(p, "softmax", q.dtype, q.n_rows, q.axis_size, kSoftmaxReads, limits);
  p.input(0, 0, "x");
  p.output(1, 0, "out");
  p.bytes<uint32_t>(2, "axis_size", static_cast<uint32_t>(q.axis_size));
  return p;
}

} // namespace mlxr::metal_launch
