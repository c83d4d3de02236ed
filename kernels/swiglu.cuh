// SwiGLU device code: y = (g * sigmoid(g)) * u, sigmoid(g) = 1 / (1 + exp(-g)), in float32 and
// rounded once to the output dtype (reference/swiglu.py's order). Host: csrc/cuda/swiglu.cu.
//
//   swiglu_flat     gate, up and out share one dense layout: one span in memory order,
//                   kV elements (16 bytes, else 1) per step.
//   swiglu_strided  anything else (broadcast, transposed, reversed inputs): each element found
//                   through its input's collapsed layout; out is row-contiguous.
#pragma once

#include <cstdint>

#include "convert.cuh"
#include "layout.cuh"

namespace mlxr::cuda {

struct SwiGLUParams {
  const void* gate;
  const void* up;
  void* out;
  int64_t size; // elements (flat: of the span)
  Layout gate_layout; // swiglu_strided only
  Layout up_layout;
};

__device__ __forceinline__ float swiglu_value(float g, float u) {
  float sigmoid = 1.0f / (1.0f + expf(-g));
  return g * sigmoid * u;
}

template <typename T, int kV>
__global__ void swiglu_flat(const SwiGLUParams p) {
  const int64_t n_vec = p.size / kV;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  const auto* gate = static_cast<const Vec<T, kV>*>(p.gate);
  const auto* up = static_cast<const Vec<T, kV>*>(p.up);
  auto* out = static_cast<Vec<T, kV>*>(p.out);
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n_vec; i += stride) {
    Vec<T, kV> g = gate[i], u = up[i], y;
#pragma unroll
    for (int k = 0; k < kV; ++k) {
      y.v[k] = from_float<T>(swiglu_value(to_float(g.v[k]), to_float(u.v[k])));
    }
    out[i] = y;
  }
}

template <typename T>
__global__ void swiglu_strided(const SwiGLUParams p) {
  const T* gate = static_cast<const T*>(p.gate);
  const T* up = static_cast<const T*>(p.up);
  T* out = static_cast<T*>(p.out);
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < p.size; i += stride) {
    float g = to_float(gate[layout_offset(p.gate_layout, i)]);
    float u = to_float(up[layout_offset(p.up_layout, i)]);
    out[i] = from_float<T>(swiglu_value(g, u));
  }
}

} // namespace mlxr::cuda
