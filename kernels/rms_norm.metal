// RMSNorm kernels: y = round_T(x * rsqrt(mean(x^2) + eps)) [* weight], float32 accumulation.
// One threadgroup per row. Host: csrc/metal/rms_norm.cpp; launch plan and buffer layout:
// csrc/metal/launch/rms_norm.h. Rows of x and out are contiguous (the op makes x
// row-contiguous on GPU streams); the weight may have any stride, including 0 and negative.
#include <metal_stdlib>

#include "reduce.h"
#include "rms_norm.h"

using namespace metal;

// Elements each thread reads per pass; kept equal to kRMSNormReads in the launch plan.
constant constexpr uint kReads = 4;

// Rows of up to kReads * threads_per_threadgroup elements: each thread keeps its kReads
// elements in registers between the reduction and the write.
template <typename T>
[[kernel]] void rms_norm_single(
    device const T* x [[buffer(0)]],
    device const T* w [[buffer(1)]],
    device T* out [[buffer(2)]],
    constant float& eps [[buffer(3)]],
    constant uint& axis_size [[buffer(4)]],
    constant int64_t& w_stride [[buffer(5)]],
    constant uint& has_weight [[buffer(6)]],
    uint row [[threadgroup_position_in_grid]],
    uint lid [[thread_position_in_threadgroup]],
    uint simd_lane [[thread_index_in_simdgroup]],
    uint simd_group [[simdgroup_index_in_threadgroup]],
    uint n_simd_groups [[simdgroups_per_threadgroup]]) {
  threadgroup float simd_sums[kSimdSize];
  size_t row_start = static_cast<size_t>(row) * axis_size;
  x += row_start;
  out += row_start;

  uint first = lid * kReads;
  float values[kReads];
  float sum_sq = 0.0f;
  for (uint k = 0; k < kReads; ++k) {
    // Threads past the row end still reach the barrier: they contribute zeros.
    values[k] = first + k < axis_size ? static_cast<float>(x[first + k]) : 0.0f;
    sum_sq += values[k] * values[k];
  }
  sum_sq = threadgroup_sum(sum_sq, simd_sums, simd_lane, simd_group, n_simd_groups);
  float inv_rms = metal::precise::rsqrt(sum_sq / axis_size + eps);

  for (uint k = 0; k < kReads; ++k) {
    if (first + k < axis_size) {
      out[first + k] = rms_output(values[k], inv_rms, w, first + k, w_stride, has_weight);
    }
  }
}

// Rows of any length: two passes over x (sum of squares, then scale), kReads-element chunks
// strided by the threadgroup's width.
template <typename T>
[[kernel]] void rms_norm_looped(
    device const T* x [[buffer(0)]],
    device const T* w [[buffer(1)]],
    device T* out [[buffer(2)]],
    constant float& eps [[buffer(3)]],
    constant uint& axis_size [[buffer(4)]],
    constant int64_t& w_stride [[buffer(5)]],
    constant uint& has_weight [[buffer(6)]],
    uint row [[threadgroup_position_in_grid]],
    uint lid [[thread_position_in_threadgroup]],
    uint n_threads [[threads_per_threadgroup]],
    uint simd_lane [[thread_index_in_simdgroup]],
    uint simd_group [[simdgroup_index_in_threadgroup]],
    uint n_simd_groups [[simdgroups_per_threadgroup]]) {
  threadgroup float simd_sums[kSimdSize];
  size_t row_start = static_cast<size_t>(row) * axis_size;
  x += row_start;
  out += row_start;
  uint chunk_stride = n_threads * kReads;

  float sum_sq = 0.0f;
  for (uint base = lid * kReads; base < axis_size; base += chunk_stride) {
    for (uint k = 0; k < kReads && base + k < axis_size; ++k) {
      float value = static_cast<float>(x[base + k]);
      sum_sq += value * value;
    }
  }
  sum_sq = threadgroup_sum(sum_sq, simd_sums, simd_lane, simd_group, n_simd_groups);
  float inv_rms = metal::precise::rsqrt(sum_sq / axis_size + eps);

  for (uint base = lid * kReads; base < axis_size; base += chunk_stride) {
    for (uint k = 0; k < kReads && base + k < axis_size; ++k) {
      out[base + k] =
          rms_output(static_cast<float>(x[base + k]), inv_rms, w, base + k, w_stride, has_weight);
    }
  }
}

// Kernel names rms_norm[_<variant>]_<dtype>; the single-pass kernel is the unnamed variant.
#define instantiate_rms_norm(name, type)                                              \
  template [[host_name("rms_norm_" #name)]] [[kernel]] decltype(rms_norm_single<type>) \
      rms_norm_single<type>;                                                          \
  template [[host_name("rms_norm_looped_" #name)]] [[kernel]]                         \
      decltype(rms_norm_looped<type>) rms_norm_looped<type>;

instantiate_rms_norm(float32, float)
instantiate_rms_norm(float16, half)
instantiate_rms_norm(bfloat16, bfloat)
