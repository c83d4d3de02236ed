// Softmax kernels: y = round_T(exp(x - max) / sum(exp(x - max))) over each row, float32
// arithmetic (reference/softmax.py). One threadgroup per row. Host: csrc/metal/softmax.cpp;
// launch plan and buffer layout: csrc/metal/launch/softmax.h. Rows of x and out are contiguous
// (the op makes x row-contiguous on GPU streams).
//
// Special values need no branch: maxima start at the lowest finite float, so -inf elements add
// exp(-inf) = 0 and an all -inf row ends with sum 0 and y = 0 / 0 = NaN; a NaN or +inf makes
// the sum NaN (exp(NaN), exp(inf - inf)), so the whole row is NaN, as the reference defines.
#include <metal_stdlib>

using namespace metal;

// Elements each thread reads per pass; kept equal to kSoftmaxReads in the launch plan.
constant constexpr uint kReads = 4;
constant constexpr uint kSimdSize = 32;
constant constexpr float kLowest = -numeric_limits<float>::max();

// Max (kMax) or sum over the threadgroup, returned to every thread. Each reduction has its own
// scratch, so consecutive reductions need one barrier each.
template <bool kMax>
inline float threadgroup_reduce(
    float partial,
    threadgroup float* scratch,
    uint simd_lane,
    uint simd_group,
    uint n_simd_groups) {
  partial = kMax ? simd_max(partial) : simd_sum(partial);
  if (simd_lane == 0) {
    scratch[simd_group] = partial;
  }
  threadgroup_barrier(mem_flags::mem_threadgroup);
  float identity = kMax ? kLowest : 0.0f;
  float total = simd_lane < n_simd_groups ? scratch[simd_lane] : identity;
  return kMax ? simd_max(total) : simd_sum(total);
}

// Rows of up to kReads * threads_per_threadgroup elements: x is read once into registers.
template <typename T>
[[kernel]] void softmax_single(
    device const T* x [[buffer(0)]],
    device T* out [[buffer(1)]],
    constant uint& axis_size [[buffer(2)]],
    uint row [[threadgroup_position_in_grid]],
    uint lid [[thread_position_in_threadgroup]],
    uint simd_lane [[thread_index_in_simdgroup]],
    uint simd_group [[simdgroup_index_in_threadgroup]],
    uint n_simd_groups [[simdgroups_per_threadgroup]]) {
  threadgroup float max_scratch[kSimdSize];
  threadgroup float sum_scratch[kSimdSize];
  size_t row_start = static_cast<size_t>(row) * axis_size;
  x += row_start;
  out += row_start;

  uint first = lid * kReads;
  float values[kReads];
  float row_max = kLowest;
  for (uint k = 0; k < kReads; ++k) {
    // Threads past the row end still reach the barriers: -inf adds nothing to the sum.
    values[k] = first + k < axis_size ? static_cast<float>(x[first + k]) : -INFINITY;
    row_max = fmax(row_max, values[k]);
  }
  row_max = threadgroup_reduce<true>(row_max, max_scratch, simd_lane, simd_group, n_simd_groups);
  float sum = 0.0f;
  for (uint k = 0; k < kReads; ++k) {
    values[k] = exp(values[k] - row_max);
    sum += values[k];
  }
  sum = threadgroup_reduce<false>(sum, sum_scratch, simd_lane, simd_group, n_simd_groups);

  for (uint k = 0; k < kReads; ++k) {
    if (first + k < axis_size) {
      out[first + k] = static_cast<T>(values[k] / sum);
    }
  }
}

// Rows of any length: one online pass (a running max and the sum of exp(x - max), rescaled when
// a chunk raises the max), then a writing pass; kReads-element chunks strided by the
// threadgroup's width.
template <typename T>
[[kernel]] void softmax_looped(
    device const T* x [[buffer(0)]],
    device T* out [[buffer(1)]],
    constant uint& axis_size [[buffer(2)]],
    uint row [[threadgroup_position_in_grid]],
    uint lid [[thread_position_in_threadgroup]],
    uint n_threads [[threads_per_threadgroup]],
    uint simd_lane [[thread_index_in_simdgroup]],
    uint simd_group [[simdgroup_index_in_threadgroup]],
    uint n_simd_groups [[simdgroups_per_threadgroup]]) {
  threadgroup float max_scratch[kSimdSize];
  threadgroup float sum_scratch[kSimdSize];
  size_t row_start = static_cast<size_t>(row) * axis_size;
  x += row_start;
  out += row_start;
  uint chunk_stride = n_threads * kReads;

  float running_max = kLowest;
  float running_sum = 0.0f;
  for (uint base = lid * kReads; base < axis_size; base += chunk_stride) {
    float values[kReads];
    float chunk_max = kLowest;
    for (uint k = 0; k < kReads; ++k) {
      values[k] = base + k < axis_size ? static_cast<float>(x[base + k]) : -INFINITY;
      chunk_max = fmax(chunk_max, values[k]);
    }
    float new_max = fmax(running_max, chunk_max);
    running_sum *= exp(running_max - new_max);
    for (uint k = 0; k < kReads; ++k) {
      running_sum += exp(values[k] - new_max);
    }
    running_max = new_max;
  }
  float row_max = threadgroup_reduce<true>(running_max, max_scratch, simd_lane, simd_group, n_simd_groups);
  float sum = threadgroup_reduce<false>(
      running_sum * exp(running_max - row_max), sum_scratch, simd_lane, simd_group, n_simd_groups);

  for (uint base = lid * kReads; base < axis_size; base += chunk_stride) {
    for (uint k = 0; k < kReads && base + k < axis_size; ++k) {
      out[base + k] = static_cast<T>(exp(static_cast<float>(x[base + k]) - row_max) / sum);
    }
  }
}

// Kernel names softmax[_<variant>]_<dtype>; the single-pass kernel is the unnamed variant.
#define instantiate_softmax(name, type)                                              \
  template [[host_name("softmax_" #name)]] [[kernel]] decltype(softmax_single<type>) \
      softmax_single<type>;                                                         \
  template [[host_name("softmax_looped_" #name)]] [[kernel]]                        \
      decltype(softmax_looped<type>) softmax_looped<type>;

instantiate_softmax(float32, float)
instantiate_softmax(float16, half)
instantiate_softmax(bfloat16, bfloat)
