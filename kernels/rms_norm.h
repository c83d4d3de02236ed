// RMSNorm's output rounding, shared by kernels/rms_norm.metal and kernels/add_rms_norm.metal.
#pragma once

#include <metal_stdlib>

using namespace metal;

// The reference's rounding: normalise in float32, round to T, then multiply by the weight
// in T (one rounding of the exact product, as T * T does).
template <typename T>
inline T rms_output(float value, float inv_rms, device const T* w, uint i, int64_t w_stride,
               uint has_weight) {
  T normed = static_cast<T>(value * inv_rms);
  if (has_weight == 0) {
    return normed;
  }
  return static_cast<T>(static_cast<float>(normed) * static_cast<float>(w[i * w_stride]));
}
