// Output buffers of the CPU kernels: when an output may take an input's buffer or layout.
#pragma once

#include "mlx/allocator.h"
#include "mlx/array.h"

namespace mlxr::cpu {

// Every element stored once, no broadcast or negative strides: an output can take its strides.
inline bool dense(const mlx::core::array& a) {
  if (!a.flags().contiguous || a.data_size() != a.size()) {
    return false;
  }
  for (auto stride : a.strides()) {
    if (stride < 0) {
      return false;
    }
  }
  return true;
}

// Gives `out` the buffer of `in` when `in` is a donated row-contiguous temporary of the
// same item size (for kernels that read each row fully before writing it), else a fresh one.
inline void reuse_or_allocate(const mlx::core::array& in, mlx::core::array& out) {
  if (in.is_donatable() && in.flags().row_contiguous && in.itemsize() == out.itemsize()) {
    out.copy_shared_buffer(in);
  } else {
    out.set_data(mlx::core::allocator::malloc(out.nbytes()));
  }
}

} // namespace mlxr::cpu
