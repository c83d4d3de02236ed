// LayerNorm kernels: y = round(round(round((x - mean) * rsqrt(var + eps)) * w) + b), mean and
// biased variance (two-pass: mean((x - mean)^2), never E[x^2] - mean^2) in float32, each
// weight / bias step rounded to T as reference/layer_norm.py prescribes. One threadgroup per
// row. Host: csrc/metal/layer_norm.cpp; launch plan and buffer layout:
// csrc/metal/launch/layer_norm.h. Rows of x and out are contiguous (the op makes x
// row-contiguous on GPU streams); weight and bias may have any stride, including 0 and negative.
#include <metal_stdlib>

#include "reduce.h"

using namespace metal;

// Elements each thread reads per pass; kept equal to kLayerNormReads in the launch plan.
constant constexpr uint kReads = 4;

// Parameters of the elementwise tail, bound once per dispatch.
template <typename T>
struct Affine {
  device const T* w;
  device const T* b;
  int64_t w_stride;
  int64_t b_stride;
  uint has_weight;
  uint has_bias;

  // Normalised value rounded to T, then * weight and + bias, each rounded to T.
  T apply(float centred, float inv_std, uint i) const {
    T y = static_cast<T>(centred * inv_std);
    if (has_weight != 0) {
      y = static_cast<T>(static_cast<float>(y) * static_cast<float>(w[i * w_stride]));
    }
    if (has_bias != 0) {
      y = static_cast<T>(static_cast<float>(y) + static_cast<float>(b[i * b_stride]));
    }
    return y;
  }
};

// Rows of up to kReads * threads_per_threadgroup elements: each thread keeps its kReads
// elements in registers for the mean, the centred sum of squares and the write.
template <typename T>
[[kernel]] void layer_norm_single(
    device const T* x [[buffer(0)]],
    device const T* w [[buffer(1)]],
    device const T* b [[buffer(2)]],
    device T* out [[buffer(3)]],
    constant float& eps [[buffer(4)]],
    constant uint& axis_size [[buffer(5)]],
    constant int64_t& w_stride [[buffer(6)]],
    constant int64_t& b_stride [[buffer(7)]],
    constant uint& has_weight [[buffer(8)]],
    constant uint& has_bias [[buffer(9)]],
    uint row [[threadgroup_position_in_grid]],
    uint lid [[thread_position_in_threadgroup]],
    uint simd_lane [[thread_index_in_simdgroup]],
    uint simd_group [[simdgroup_index_in_threadgroup]],
    uint n_simd_groups [[simdgroups_per_threadgroup]]) {
  // One array per reduction: the second may start while threads still read the first.
  threadgroup float mean_sums[kSimdSize];
  threadgroup float var_sums[kSimdSize];
  size_t row_start = static_cast<size_t>(row) * axis_size;
  x += row_start;
  out += row_start;
  Affine<T> affine{w, b, w_stride, b_stride, has_weight, has_bias};

  uint first = lid * kReads;
  float values[kReads];
  float sum = 0.0f;
  for (uint k = 0; k < kReads; ++k) {
    // Threads past the row end still reach the barriers: they contribute zeros.
    values[k] = first + k < axis_size ? static_cast<float>(x[first + k]) : 0.0f;
    sum += values[k];
  }
  float mean = threadgroup_sum(sum, mean_sums, simd_lane, simd_group, n_simd_groups) / axis_size;

  float sum_sq = 0.0f;
  for (uint k = 0; k < kReads; ++k) {
    values[k] = first + k < axis_size ? values[k] - mean : 0.0f;
    sum_sq += values[k] * values[k];
  }
  float var = threadgroup_sum(sum_sq, var_sums, simd_lane, simd_group, n_simd_groups) / axis_size;
  float inv_std = metal::precise::rsqrt(var + eps);

  for (uint k = 0; k < kReads; ++k) {
    if (first + k < axis_size) {
      out[first + k] = affine.apply(values[k], inv_std, first + k);
    }
  }
}

// Rows of any length: three passes over x (sum, centred sum of squares, write), kReads-element
// chunks strided by the threadgroup's width. Each element is read and written by one thread.
template <typename T>
[[kernel]] void layer_norm_looped(
    device const T* x [[buffer(0)]],
    device const T* w [[buffer(1)]],
    device const T* b [[buffer(2)]],
    device T* out [[buffer(3)]],
    constant float& eps [[buffer(4)]],
    constant uint& axis_size [[buffer(5)]],
    constant int64_t& w_stride [[buffer(6)]],
    constant int64_t& b_stride [[buffer(7)]],
    constant uint& has_weight [[buffer(8)]],
    constant uint& has_bias [[buffer(9)]],
    uint row [[threadgroup_position_in_grid]],
    uint lid [[thread_position_in_threadgroup]],
    uint n_threads [[threads_per_threadgroup]],
    uint simd_lane [[thread_index_in_simdgroup]],
    uint simd_group [[simdgroup_index_in_threadgroup]],
    uint n_simd_groups [[simdgroups_per_threadgroup]]) {
  threadgroup float mean_sums[kSimdSize];
  threadgroup float var_sums[kSimdSize];
  size_t row_start = static_cast<size_t>(row) * axis_size;
  x += row_start;
  out += row_start;
  Affine<T> affine{w, b, w_stride, b_stride, has_weight, has_bias};
  uint chunk_stride = n_threads * kReads;

  float sum = 0.0f;
  for (uint base = lid * kReads; base < axis_size; base += chunk_stride) {
    for (uint k = 0; k < kReads && base + k < axis_size; ++k) {
      sum += static_cast<float>(x[base + k]);
    }
  }
  float mean = threadgroup_sum(sum, mean_sums, simd_lane, simd_group, n_simd_groups) / axis_size;

  float sum_sq = 0.0f;
  for (uint base = lid * kReads; base < axis_size; base += chunk_stride) {
    for (uint k = 0; k < kReads && base + k < axis_size; ++k) {
      float centred = static_cast<float>(x[base + k]) - mean;
      sum_sq += centred * centred;
    }
  }
  float var = threadgroup_sum(sum_sq, var_sums, simd_lane, simd_group, n_simd_groups) / axis_size;
  float inv_std = metal::precise::rsqrt(var + eps);

  for (uint base = lid * kReads; base < axis_size; base += chunk_stride) {
    for (uint k = 0; k < kReads && base + k < axis_size; ++k) {
      out[base + k] = affine.apply(static_cast<float>(x[base + k]) - mean, inv_std, base + k);
    }
  }
}

// Kernel names layer_norm[_<variant>]_<dtype>; the single-pass kernel is the unnamed variant.
#define instantiate_layer_norm(name, type)                                                \
  template [[host_name("layer_norm_" #name)]] [[kernel]] decltype(layer_norm_single<type>) \
      layer_norm_single<type>;                                                            \
  template [[host_name("layer_norm_looped_" #name)]] [[kernel]]                           \
      decltype(layer_norm_looped<type>) layer_norm_looped<type>;

instantiate_layer_norm(float32, float)
instantiate_layer_norm(float16, half)
instantiate_layer_norm(bfloat16, bfloat)
