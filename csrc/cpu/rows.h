// Addressing rows (the last axis) of an arbitrarily strided array: transposed views, strided
// slices, stride-0 broadcasts and negative strides all reduce to "row start + i * step".
#pragma once

#include <cmath>
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

// Row `r` of `base` as a contiguous pointer: in place when its step is 1, else gathered
// (step 0, a broadcast, becomes a fill) into `buffer`, so every pass over it runs on
// contiguous data.
template <typename S>
const S* row_of(const S* base, const RowWalker& rows, int64_t r, int64_t n, std::vector<S>& buffer) {
  const S* row = base + rows.offset(r);
  int64_t step = rows.step();
  if (step == 1) {
    return row;
  }
  buffer.resize(n);
  for (int64_t i = 0; i < n; ++i) {
    buffer[i] = row[i * step];
  }
  return buffer.data();
}

// A 1-D parameter (weight, bias: any strides, already in storage type S) as a contiguous
// pointer: its own data when contiguous, else a copy in `scratch`.
template <typename S>
const S* contiguous_row(const mlx::core::array& a, std::vector<S>& scratch) {
  if (a.size() <= 1 || a.strides()[0] == 1) {
    return a.data<S>();
  }
  scratch.resize(a.size());
  const S* data = a.data<S>();
  for (size_t i = 0; i < scratch.size(); ++i) {
    scratch[i] = data[static_cast<int64_t>(i) * a.strides()[0]];
  }
  return scratch.data();
}

// Whether every element of a parameter row is finite (checked once per call, for
// kernels whose NaN-free rows may skip NaN handling).
template <typename D>
inline bool all_finite(const typename D::storage* p, int64_t n) {
  bool finite = true;
  for (int64_t i = 0; i < n; ++i) {
    finite &= std::isfinite(D::load(p[i]));
  }
  return finite;
}

} // namespace mlxr::cpu
