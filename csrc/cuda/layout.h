// Host side of kernels/layout.cuh: collapse axes [begin, end) of one or more arrays of one
// shape into the fewest strided axes that walk them in row-major order.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "../../kernels/layout.cuh"
#include "mlx/array.h"

namespace mlxr::cuda {

// One Layout per array, all with the same collapsed shape: size-1 axes are dropped and an
// axis merges into the next inner one where every array allows it. Throws (naming `op`) when
// more than kLayoutMaxDims axes remain. Allocation-free: it runs in every eval_gpu, and decode
// calls are host-bound.
template <size_t N>
std::array<Layout, N> collapse_axes(const mlx::core::array* const (&arrays)[N], int begin, int end, const char* op) {
  std::array<Layout, N> out{};
  int ndim = 0;
  for (int k = begin; k < end; ++k) {
    int64_t size = arrays[0]->shape(k);
    if (size == 1) {
      continue;
    }
    bool merge = ndim > 0;
    for (size_t a = 0; a < N && merge; ++a) {
      merge = out[a].strides[ndim - 1] == size * arrays[a]->strides()[k];
    }
    if (merge) {
      out[0].shape[ndim - 1] *= size;
      for (size_t a = 0; a < N; ++a) {
        out[a].strides[ndim - 1] = arrays[a]->strides()[k];
      }
      continue;
    }
    if (ndim == kLayoutMaxDims) {
      throw std::runtime_error(std::string("[") + op + "] more than " + std::to_string(kLayoutMaxDims) +
                               " strided axes for the CUDA kernel");
    }
    out[0].shape[ndim] = size;
    for (size_t a = 0; a < N; ++a) {
      out[a].strides[ndim] = arrays[a]->strides()[k];
    }
    ++ndim;
  }
  if (ndim == 0) {
    out[0].shape[0] = 1;
    ndim = 1; // strides stay 0
  }
  for (size_t a = 0; a < N; ++a) {
    out[a].ndim = ndim;
    for (int k = 0; k < ndim; ++k) {
      out[a].shape[k] = out[0].shape[k];
    }
  }
  return out;
}

// The rows of x (all axes but the last) collapsed as collapse_axes does, into a kernel's fixed
// arrays of kMax axes (rms_norm and rope keep their own, smaller bound).
template <int kMax>
void collapse_rows(const mlx::core::array& x, int& ndim, int64_t (&shape)[kMax], int64_t (&strides)[kMax],
                   const char* op) {
  Layout rows = collapse_axes({&x}, 0, static_cast<int>(x.ndim()) - 1, op)[0];
  if (rows.ndim > kMax) {
    throw std::runtime_error(std::string("[") + op + "] too many row axes for the CUDA kernel");
  }
  ndim = rows.ndim;
  for (int k = 0; k < rows.ndim; ++k) {
    shape[k] = rows.shape[k];
    strides[k] = rows.strides[k];
  }
}

// Host side of ColumnTiles (rms_norm_cols, softmax_cols): `inner` rows adjacent in memory on
// the innermost row axis, the n_outer row axes around them `outer_strides` apart, a row's
// elements `elem_step` apart. A lane loads rows_per_lane() of them at once: 8 bytes' worth,
// else 2, else 1, the widest at which every tile's rows are aligned.
struct ColumnRows {
  const void* x;
  int itemsize;
  int64_t inner;
  int64_t elem_step;
  const int64_t* outer_strides;
  int n_outer;

  bool aligned(int rpl) const {
    bool ok = inner % rpl == 0 && elem_step % rpl == 0 && reinterpret_cast<uintptr_t>(x) % (rpl * itemsize) == 0;
    for (int k = 0; k < n_outer; ++k) {
      ok = ok && outer_strides[k] % rpl == 0;
    }
    return ok;
  }
  int rows_per_lane() const {
    const int wide = 8 / itemsize;
    return aligned(wide) ? wide : (wide > 2 && aligned(2) ? 2 : 1);
  }
  // Tiles (blocks) of 32 lanes x rpl rows over n_rows rows.
  int64_t tiles(int rpl, int64_t n_rows) const {
    return (inner + 32 * rpl - 1) / (32 * rpl) * (n_rows / inner);
  }
};

} // namespace mlxr::cuda
