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

// The tiles of the columns kernels (rms_norm_cols, softmax_cols): rows adjacent in memory
// (the innermost row axis, `inner` rows of stride 1) taken kRows at a time, grid-stride; a
// tile never straddles two outer rows.
template <int kRows>
struct ColumnTiles {
  int64_t inner, per_outer, count;
  __device__ __forceinline__ ColumnTiles(int64_t inner_rows, int64_t n_rows)
      : inner(inner_rows), per_outer((inner_rows + kRows - 1) / kRows), count(per_outer * (n_rows / inner_rows)) {}
  // Tile t: the row-major index of its first row, and how many rows it has (<= kRows).
  __device__ __forceinline__ int64_t first_row(int64_t t) const {
    return (t / per_outer) * inner + (t % per_outer) * kRows;
  }
  __device__ __forceinline__ int rows(int64_t t) const {
    const int64_t left = inner - (t % per_outer) * kRows;
    return static_cast<int>(left < kRows ? left : kRows);
  }
};

} // namespace mlxr::cuda
