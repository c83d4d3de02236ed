// Strided N-d index spaces for the CUDA kernels that read inputs in place: element (or row)
// i of a row-major walk over `shape` sits at sum_k idx_k(i) * strides[k]. Hosts collapse the
// axes first (csrc/cuda/layout.h), so most layouts have ndim 1 and need no division.
#pragma once

#include <cstdint>

namespace mlxr::cuda {

constexpr int kLayoutMaxDims = 8;

struct Layout {
  int ndim;
  int64_t shape[kLayoutMaxDims];
  int64_t strides[kLayoutMaxDims];
};

// The walk over ndim axes of shape/strides (rope, which keeps smaller fixed arrays of its own,
// calls it directly).
__device__ __forceinline__ int64_t strided_offset(int ndim, const int64_t* shape, const int64_t* strides,
                                                  int64_t i) {
  if (ndim == 1) { // the common case, without 64-bit division
    return i * strides[0];
  }
  int64_t off = 0;
  for (int k = ndim - 1; k >= 0; --k) {
    off += (i % shape[k]) * strides[k];
    i /= shape[k];
  }
  return off;
}

__device__ __forceinline__ int64_t layout_offset(const Layout& l, int64_t i) {
  return strided_offset(l.ndim, l.shape, l.strides, i);
}

} // namespace mlxr::cuda
