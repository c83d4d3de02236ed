// Launch plan of kernels/rope.metal: a threadgroup per (offset group, position) and chunk of
// the rows sharing them.
#pragma once

#include <algorithm>

#include "rows.h"

namespace mlxr::metal_launch {

// Rows (heads) of one (group, position) a threadgroup rotates with one cos/sin per pair.
constexpr int64_t kRopeRowsPerGroup = 8;
// Threadgroups along the grid's y axis (the row chunks) stay within Metal's limit.
constexpr int64_t kRopeMaxGridY = 65535;

struct RopeQuery {
  int64_t n_groups; // distinct offsets: 1, or B for per-batch offsets
  int64_t n_t; // positions (axis -2)
  int64_t n_m; // rows sharing one (group, position): the product of the axes in between
  int64_t row_size; // D
  int64_t dims; // rotated features (even, <= D)
  int64_t offset_stride; // elements between offsets (any sign, 0 for a broadcast)
  int64_t inv_stride; // elements between inverse frequencies
  std::string dtype; // float32, float16, bfloat16
  bool traditional;
  bool forward;
  float scale;
};

// Buffers: 0 x (input 0), 1 offset (input 1, int32), 2 inv_freqs (input 2, float32),
// 3 out (output 0), 4 row_size, 5 dims, 6 n_t, 7 n_m, 8 rows_per_group, 9 offset_stride,
// 10 inv_stride, 11 scale, 12 traditional, 13 forward. Rows whose units (dims / 2 pairs plus
// the copied features) fit one threadgroup take one unit per thread; longer rows the looped
// kernel with the widest threadgroup.
inline Plan rope_plan(const RopeQuery& q, const DeviceLimits& limits = {}) {
  int64_t units = q.dims / 2 + (q.row_size - q.dims);
  int64_t rows_per_group = std::max(kRopeRowsPerGroup, (q.n_m + kRopeMaxGridY - 1) / kRopeMaxGridY);
  rows_per_group = std::min(rows_per_group, std::max<int64_t>(q.n_m, 1));
  // A "row" of plan_rows is a unit (one thread's pair or copied feature) here.
  Plan p;
  plan_rows(p, "rope", q.dtype, q.n_groups * q.n_t, units, 1, limits);
  p.grid[1] = static_cast<size_t>((q.n_m + rows_per_group - 1) / rows_per_group);
  p.input(0, 0, "x");
  p.input(1, 1, "offset");
  p.input(2, 2, "inv_freqs");
  p.output(3, 0, "out");
  p.bytes<uint32_t>(4, "row_size", static_cast<uint32_t>(q.row_size));
  p.bytes<uint32_t>(5, "dims", static_cast<uint32_t>(q.dims));
  p.bytes<uint32_t>(6, "n_t", static_cast<uint32_t>(q.n_t));
  p.bytes<uint32_t>(7, "n_m", static_cast<uint32_t>(q.n_m));
  p.bytes<uint32_t>(8, "rows_per_group", static_cast<uint32_t>(rows_per_group));
  p.bytes<int64_t>(9, "offset_stride", q.offset_stride);
  p.bytes<int64_t>(10, "inv_stride", q.inv_stride);
  p.bytes<float>(11, "scale", q.scale);
  p.bytes<uint32_t>(12, "traditional", q.traditional ? 1u : 0u);
  p.bytes<uint32_t>(13, "forward", q.forward ? 1u : 0u);
  return p;
}

} // namespace mlxr::metal_launch
