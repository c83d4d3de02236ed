// Residual add + RMSNorm kernels: h = round_T(x + residual), normed = round_T(h *
// rsqrt(mean(h^2) + eps)) [then round_T(normed * weight)], float32 accumulation of the rounded
// h (reference/add_rms_norm.py, kernels/rms_norm.metal's arithmetic). x and residual are read
// once, h and normed written once. One threadgroup per row. Host: csrc/metal/add_rms_norm.cpp;
// launch plan and buffer layout: csrc/metal/launch/add_rms_norm.h. Rows of x, residual and
// both outputs are contiguous; the weight may have any stride, including 0 and negative.
#include <metal_stdlib>

#include "reduce.h"
#include "rms_norm.h"

using namespace metal;

// Elements each thread reads per pass; kept equal to kAddRMSNormReads in the launch plan.
constant constexpr uint kReads = 4;

// Rows of up to kReads * threads_per_threadgroup elements: each thread keeps its kReads
// elements of h in registers between the reduction and the write of normed.
template <typename T>
[[kernel]] void add_rms_norm_single(
    device const T* x [[buffer(0)]],
    device const T* residual [[buffer(1)]],
    device const T* w [[buffer(2)]],
    device T* normed [[buffer(3)]],
    device T* h [[buffer(4)]],
    constant float& eps [[buffer(5)]],
    constant uint& axis_size [[buffer(6)]],
    constant int64_t& w_stride [[buffer(7)]],
    constant uint& has_weight [[buffer(8)]],
    uint row [[threadgroup_position_in_grid]],
    uint lid [[thread_position_in_threadgroup]],
    uint simd_lane [[thread_index_in_simdgroup]],
    uint simd_group [[simdgroup_index_in_threadgroup]],
    uint n_simd_groups [[simdgroups_per_threadgroup]]) {
  threadgroup float simd_sums[kSimdSize];
  size_t row_start = static_cast<size_t>(row) * axis_size;
  x += row_start;
  residual += row_start;
  normed += row_start;
  h += row_start;

  uint first = lid * kReads;
  float values[kReads];
  float sum_sq = 0.0f;
  for (uint k = 0; k < kReads; ++k) {
    // Threads past the row end still reach the barrier: they contribute zeros.
    values[k] = 0.0f;
    if (first + k < axis_size) {
      T sum = static_cast<T>(static_cast<float>(x[first + k]) + static_cast<float>(residual[first + k]));
      h[first + k] = sum;
      values[k] = static_cast<float>(sum);
    }
    sum_sq += values[k] * values[k];
  }
  sum_sq = threadgroup_sum(sum_sq, simd_sums, simd_lane, simd_group, n_simd_groups);
  float inv_rms = metal::precise::rsqrt(sum_sq / axis_size + eps);

  for (uint k = 0; k < kReads; ++k) {
    if (first + k < axis_size) {
      normed[first + k] = rms_output(values[k], inv_rms, w, first + k, w_stride, has_weight);
    }
  }
}

// Rows of any length: the first pass writes h and sums its squares, the second reads h back
// (each thread its own stores) and writes normed; kReads-element chunks strided by the
// threadgroup's width.
template <typename T>
[[kernel]] void add_rms_norm_looped(
    device const T* x [[buffer(0)]],
    device const T* residual [[buffer(1)]],
    device const T* w [[buffer(2)]],
    device T* normed [[buffer(3)]],
    device T* h [[buffer(4)]],
    constant float& eps [[buffer(5)]],
    constant uint& axis_size [[buffer(6)]],
    constant int64_t& w_stride [[buffer(7)]],
    constant uint& has_weight [[buffer(8)]],
    uint row [[threadgroup_position_in_grid]],
    uint lid [[thread_position_in_threadgroup]],
    uint n_threads [[threads_per_threadgroup]],
    uint simd_lane [[thread_index_in_simdgroup]],
    uint simd_group [[simdgroup_index_in_threadgroup]],
    uint n_simd_groups [[simdgroups_per_threadgroup]]) {
  threadgroup float simd_sums[kSimdSize];
  size_t row_start = static_cast<size_t>(row) * axis_size;
  x += row_start;
  residual += row_start;
  normed += row_start;
  h += row_start;
  uint chunk_stride = n_threads * kReads;

  float sum_sq = 0.0f;
  for (uint base = lid * kReads; base < axis_size; base += chunk_stride) {
    for (uint k = 0; k < kReads && base + k < axis_size; ++k) {
      T sum = static_cast<T>(static_cast<float>(x[base + k]) + static_cast<float>(residual[base + k]));
      h[base + k] = sum;
      float value = static_cast<float>(sum);
      sum_sq += value * value;
    }
  }
  sum_sq = threadgroup_sum(sum_sq, simd_sums, simd_lane, simd_group, n_simd_groups);
  float inv_rms = metal::precise::rsqrt(sum_sq / axis_size + eps);

  for (uint base = lid * kReads; base < axis_size; base += chunk_stride) {
    for (uint k = 0; k < kReads && base + k < axis_size; ++k) {
      T stored = h[base + k];
      normed[base + k] = rms_output(static_cast<float>(stored), inv_rms, w, base + k, w_stride, has_weight);
    }
  }
}

// Kernel names add_rms_norm[_<variant>]_<dtype>; the single-pass kernel is the unnamed variant.
#define instantiate_add_rms_norm(name, type)                              \
  template [[host_name("add_rms_norm_" #name)]] [[kernel]]                \
      decltype(add_rms_norm_single<type>) add_rms_norm_single<type>;      \
  template [[host_name("add_rms_norm_looped_" #name)]] [[kernel]]         \
      decltype(add_rms_norm_looped<type>) add_rms_norm_looped<type>;

instantiate_add_rms_norm(float32, float)
instantiate_add_rms_norm(float16, half)
instantiate_add_rms_norm(bfloat16, bfloat)
