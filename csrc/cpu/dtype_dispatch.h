// The dtype switch of every CPU eval: one kernel instantiation per floating output dtype,
// named `<op>_<dtype>` for record_kernel.
#pragma once

#include <stdexcept>
#include <string>

#include "cpu/convert.h"
#include "mlx/dtype.h"

namespace mlxr::cpu {

// Calls fn(D{}, kernel) with D the traits (convert.h) of `dtype` and kernel "<op>_<dtype>".
// The Python layer sends only these dtypes to a CPU kernel.
template <typename Fn>
void dispatch_float(mlx::core::Dtype dtype, const std::string& op, Fn&& fn) {
  switch (dtype) {
    case mlx::core::float32:
      return fn(F32{}, op + "_float32");
    case mlx::core::float16:
      return fn(F16{}, op + "_float16");
    case mlx::core::bfloat16:
      return fn(BF16{}, op + "_bfloat16");
    case mlx::core::float64:
      return fn(F64{}, op + "_float64");
    default:
      throw std::runtime_error("[" + op + "] unsupported dtype reached the CPU kernel");
  }
}

} // namespace mlxr::cpu
