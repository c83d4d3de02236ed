// Addressing rows (the last axis) of an arbitrarily strided array: transposed views, strided
// slices, stride-0 broadcasts and negative strides all reduce to "row start + i * step".
#pragma once

#include <cstdint>
#include <vector>

#include "mlx/array.h"

namespace mlxr::cpu {

class RowWalker {
 public:
  // Rows of `a` are its last axis; the leading axes are walked in row-major order.
  explicit RowWalker(const mlx::core::array& a) {
    int nd = static_cast<int>(a.ndim());
    for (int i = 0; i + 1 < nd; ++i) {
      shape_.push_back(a.shape(i));
      strides_.push_back(a.strides()[i]);
    }
    step_ = nd > 0 ? a.strides()[nd - 1] : 1;
  }

  // Element offset of row `row` (row-major index over the leading axes).
  int64_t offset(int64_t row) const {
    int64_t off = 0;
    for (int i = static_cast<int>(shape_.size()) - 1; i >= 0; --i) {
      int64_t idx = row % shape_[i];
      row /= shape_[i];
      off += idx * strides_[i];
    }
    return off;
  }

  // Distance between neighbouring elements of one row.
  int64_t step() const {
    return step_;
  }

 private:
  std::vector<int64_t> shape_;
  std::vector<int64_t> strides_;
  int64_t step_;
};

} // namespace mlxr::cpu
