// Launch shape of the row kernels (one threadgroup per row, `reads` elements per thread per
// pass): <op>_<dtype> when the row fits one threadgroup, else <op>_looped_<dtype> with the
// widest threadgroup.
#pragma once

#include "plan.h"

namespace mlxr::metal_launch {

inline void plan_rows(Plan& p, const std::string& op, const std::string& dtype, int64_t n_rows,
                      int64_t axis_size, size_t reads, const DeviceLimits& limits) {
  size_t simd = limits.simd_size;
  size_t max_group = limits.max_threads_per_group / simd * simd;
  size_t threads_needed = (static_cast<size_t>(axis_size) + reads - 1) / reads;
  size_t group = (threads_needed + simd - 1) / simd * simd;
  if (group <= max_group) {
    p.kernel = op + "_" + dtype;
    p.group = {group ? group : simd, 1, 1};
  } else {
    p.kernel = op + "_looped_" + dtype;
    p.group = {max_group, 1, 1};
  }
  p.grid = {static_cast<size_t>(n_rows), 1, 1};
}

} // namespace mlxr::metal_launch
