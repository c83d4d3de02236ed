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

__device__ __forceinline__ int64_t layout_offset(const Layout& l, int64_t i) {
  if (l.ndim == 1) {
    return i * l.strides[0];
  }
  int64_t off = 0;
  for (int k = l.ndim - 1; k >= 0; --k) {
    off += (i % l.shape[k]) * l.strides[k];
    i /= l.shape[k];
  }
  return off;
}

} // namespace mlxr::cuda
