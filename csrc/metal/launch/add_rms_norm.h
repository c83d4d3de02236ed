// Launch plan of kernels/add_rms_norm.metal: one threadgroup per row.
#pragma once

#include "rms_norm.h"

namespace mlxr::metal_launch {

// Elements per thread per pass; kReads in kernels/add_rms_norm.metal.
constexpr size_t kAddRMSNormReads = 4;

// The arguments of the RMSNorm of h: rows of x, residual and both outputs are contiguous.
using AddRMSNormQuery = RMSNormQuery;

// Buffers: 0 x (input 0), 1 residual (input 1), 2 weight (input 2; x when there is no weight,
// never read), 3 normed (output 0), 4 h (output 1), 5 eps, 6 axis_size, 7 w_stride,
// 8 has_weight. Single-pass or looped kernel by row length (plan_rows).
inline Plan add_rms_norm_plan(const AddRMSNormQuery& q, const DeviceLimits& limits = {}) {
  Plan p;
  plan_rows(p, "add_rms_norm", q.dtype, q.n_rows, q.axis_size, kAddRMSNormReads, limits);
  p.input(0, 0, "x");
  p.input(1, 1, "residual");
  p.input(2, q.has_weight ? 2 : 0, "weight");
  p.output(3, 0, "normed");
  p.output(4, 1, "h");
  rms_norm_bytes(p, 5, q);
  return p;
}

} // namespace mlxr::metal_launch
