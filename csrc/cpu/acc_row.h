// Rows in accumulator precision. float16/bfloat16 norm kernels are bound by conversions, not
// memory: the pass that reads a row from memory converts it once into a row-sized float
// scratch, and the later passes (in cache) read floats. Parameters (weight, bias) are
// converted once per call. float32/float64 rows are used as they are.
#pragma once

#include <cstdint>
#include <type_traits>
#include <vector>

#include "cpu/convert.h"

namespace mlxr::cpu {

// The dtype whose storage is D's accumulator type (F32, or F64 for F64).
template <typename D>
using AccDtype = std::conditional_t<std::is_same_v<typename D::acc, double>, F64, F32>;

// True when D's storage differs from its accumulator (a scratch copy pays off).
template <typename D>
constexpr bool kConverts = !std::is_same_v<typename D::storage, typename D::acc>;

// `p[0..n)` in accumulator precision: p itself when no conversion is needed, else a copy in
// `scratch`.
template <typename D>
const typename D::acc* acc_row(
    const typename D::storage* p,
    int64_t n,
    std::vector<typename D::acc>& scratch) {
  if constexpr (kConverts<D>) {
    scratch.resize(n);
    for (int64_t i = 0; i < n; ++i) {
      scratch[i] = D::load(p[i]);
    }
    return scratch.data();
  } else {
    return p;
  }
}

} // namespace mlxr::cpu
