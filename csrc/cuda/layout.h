// Host side of kernels/layout.cuh: collapse axes [begin, end) of one or more arrays of one
// shape into the fewest strided axes that walk them in row-major order.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "../../kernels/layout.cuh"
#include "mlx/array.h"

namespace mlxr::cuda {

// One Layout per array, all with the same collapsed shape: size-1 axes are dropped and an
// axis merges into the next inner one where every array allows it. Throws (naming `op`) when
// more than kLayoutMaxDims axes remain.
inline std::vector<Layout> collapse_axes(const std::vector<const mlx::core::array*>& arrays,
                                         int begin, int end, const char* op) {
  const mlx::core::array& first = *arrays[0];
  std::vector<int64_t> shape;
  std::vector<std::vector<int64_t>> strides(arrays.size());
  for (int k = begin; k < end; ++k) {
    int64_t size = first.shape(k);
    if (size == 1) {
      continue;
    }
    bool merge = !shape.empty();
    for (size_t a = 0; a < arrays.size() && merge; ++a) {
      merge = strides[a].back() == size * arrays[a]->strides()[k];
    }
    if (merge) {
      shape.back() *= size;
      for (size_t a = 0; a < arrays.size(); ++a) {
        strides[a].back() = arrays[a]->strides()[k];
      }
    } else {
      shape.push_back(size);
      for (size_t a = 0; a < arrays.size(); ++a) {
        strides[a].push_back(arrays[a]->strides()[k]);
      }
    }
  }
  if (shape.empty()) {
    shape.push_back(1);
    for (auto& s : strides) {
      s.push_back(0);
    }
  }
  if (shape.size() > static_cast<size_t>(kLayoutMaxDims)) {
    throw std::runtime_error(std::string("[") + op + "] more than " +
                             std::to_string(kLayoutMaxDims) + " strided axes for the CUDA kernel");
  }
  std::vector<Layout> out(arrays.size());
  for (size_t a = 0; a < arrays.size(); ++a) {
    out[a].ndim = static_cast<int>(shape.size());
    for (size_t k = 0; k < shape.size(); ++k) {
      out[a].shape[k] = shape[k];
      out[a].strides[k] = strides[a][k];
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
