// Launch plan of kernels/swiglu.metal: kSwiGLUWork consecutive elements per thread.
#pragma once

#include <algorithm>

#include "plan.h"

namespace mlxr::metal_launch {

// Elements per thread; kWork in kernels/swiglu.metal.
constexpr size_t kSwiGLUWork = 4;
constexpr size_t kSwiGLUGroup = 256;

struct SwiGLUQuery {
  int64_t size; // elements of gate, up and out (contiguous, one shape)
  std::string dtype; // float32, float16, bfloat16
  bool aligned; // gate, up and out start on a kSwiGLUWork-element boundary
};

// Buffers: 0 gate (input 0), 1 up (input 1), 2 out (output 0), 3 size (int64).
// Aligned buffers take vector loads and stores (swiglu_<dtype>); others swiglu_unaligned_<dtype>.
inline Plan swiglu_plan(const SwiGLUQuery& q, const DeviceLimits& limits = {}) {
  size_t threads = (static_cast<size_t>(q.size) + kSwiGLUWork - 1) / kSwiGLUWork;
  size_t group = std::min(kSwiGLUGroup, limits.max_threads_per_group / limits.simd_size * limits.simd_size);
  Plan p;
  p.kernel = (q.aligned ? "swiglu_" : "swiglu_unaligned_") + q.dtype;
  p.group = {group, 1, 1};
  p.grid = {(threads + group - 1) / group, 1, 1};
  p.input(0, 0, "gate");
  p.input(1, 1, "up");
  p.output(2, 0, "out");
  p.bytes<int64_t>(3, "size", q.size);
  return p;
}

} // namespace mlxr::metal_launch
