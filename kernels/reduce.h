// Threadgroup reductions shared by the row kernels in kernels/*.metal (one threadgroup per
// row, 32-wide simdgroups, at most 32 simdgroups per threadgroup).
#pragma once

#include <metal_stdlib>

using namespace metal;

constant constexpr uint kSimdSize = 32;

// Sum over the threadgroup, returned to every thread. Each simdgroup adds the per-simdgroup
// partials itself, so one barrier suffices; simd_sums (kSimdSize floats) is written once per
// call, so a kernel that reduces twice gives each reduction its own array.
inline float threadgroup_sum(
    float partial,
    threadgroup float* simd_sums,
    uint simd_lane,
    uint simd_group,
    uint n_simd_groups) {
  partial = simd_sum(partial);
  if (simd_lane == 0) {
    simd_sums[simd_group] = partial;
  }
  threadgroup_barrier(mem_flags::mem_threadgroup);
  float total = simd_lane < n_simd_groups ? simd_sums[simd_lane] : 0.0f;
  return simd_sum(total);
}
