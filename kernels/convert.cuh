// Element conversions and vector packs shared by the CUDA kernels: values are computed in
// float32 and rounded once to the storage dtype (round to nearest even).
#pragma once

#include <cstdint>

#include <cuda_bf16.h>
#include <cuda_fp16.h>

namespace mlxr::cuda {

__device__ __forceinline__ float to_float(float v) {
  return v;
}
__device__ __forceinline__ float to_float(__half v) {
  return __half2float(v);
}
__device__ __forceinline__ float to_float(__nv_bfloat16 v) {
  return __bfloat162float(v);
}

template <typename T>
__device__ __forceinline__ T from_float(float v);
template <>
__device__ __forceinline__ float from_float<float>(float v) {
  return v;
}
template <>
__device__ __forceinline__ __half from_float<__half>(float v) {
  return __float2half_rn(v);
}
template <>
__device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float v) {
  return __float2bfloat16_rn(v);
}

// V elements moved as one aligned load or store (16 bytes for the row kernels).
template <typename T, int V>
struct alignas(sizeof(T) * V) Vec {
  T v[V];
};

// kV per-element parameters (weight, bias) from element j as floats: one 16-byte load where the
// host found them a 16-byte aligned run (vec), else kV strided loads; 1s where base is null.
template <typename T, int kV>
__device__ __forceinline__ void load_params(const void* base, int64_t j, int64_t step, bool vec, float (&out)[kV]) {
  const T* p = static_cast<const T*>(base);
  if (!p) {
#pragma unroll
    for (int k = 0; k < kV; ++k) {
      out[k] = 1.0f;
    }
    return;
  }
  if constexpr (kV > 1) {
    if (vec) {
      Vec<T, kV> v = *reinterpret_cast<const Vec<T, kV>*>(p + j);
#pragma unroll
      for (int k = 0; k < kV; ++k) {
        out[k] = to_float(v.v[k]);
      }
      return;
    }
  }
#pragma unroll
  for (int k = 0; k < kV; ++k) {
    out[k] = to_float(p[(j + k) * step]);
  }
}

} // namespace mlxr::cuda
