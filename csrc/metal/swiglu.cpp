// Metal host code of SwiGLU: kernels/swiglu.metal, launched as csrc/metal/launch/swiglu.h
// plans. Compiled only in Metal builds (csrc/metal/metal.cmake defines MLXR_GPU).
#include "swiglu.h"

#include <cstdint>
#include <stdexcept>

#include "metal/encode.h"
#include "metal/launch/swiglu.h"
#include "mlx/allocator.h"
#include "mlx/backend/metal/utils.h"

namespace mlxr {

void SwiGLU::eval_gpu(const std::vector<mx::array>& inputs, std::vector<mx::array>& outputs) {
  // Buffer indices, in set_* order (the plan of csrc/metal/launch/swiglu.h encodes them):
  //   set_input_array   gate -> 0
  //   set_input_array   up   -> 1
  //   set_output_array  out  -> 2
  //   set_bytes         size (int64) -> 3
  const mx::array& gate = inputs[0];
  const mx::array& up = inputs[1];
  mx::array& out = outputs[0];
  metal::require_kernel_dtype("swiglu", out);
  if (!gate.flags().row_contiguous || !up.flags().row_contiguous) {
    // The op inserts mx::contiguous on GPU streams, so this is a broken invariant.
    throw std::runtime_error("[swiglu] the Metal kernel needs row-contiguous gate and up");
  }
  // Elementwise: each element is read and written by one thread, so a donated input is
  // overwritten in place.
  metal::allocate_output(out, gate.is_donatable() ? gate : up);
  if (out.size() == 0) {
    return;
  }
  // Vector loads need every buffer to start on a kSwiGLUWork-element boundary.
  int64_t vector_bytes = static_cast<int64_t>(metal_launch::kSwiGLUWork * out.itemsize());
  bool aligned = gate.offset() % vector_bytes == 0 && up.offset() % vector_bytes == 0 &&
      out.offset() % vector_bytes == 0;
  metal_launch::SwiGLUQuery query{static_cast<int64_t>(out.size()), mx::type_to_name(out), aligned};
  metal::encode_plan(metal_launch::swiglu_plan, query, inputs, outputs, stream());
}

} // namespace mlxr
