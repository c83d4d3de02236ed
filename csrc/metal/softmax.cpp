// Metal host code of Softmax: kernels/softmax.metal, launched as csrc/metal/launch/softmax.h
// plans. Compiled only in Metal builds (csrc/metal/metal.cmake defines MLXR_GPU).
#include "softmax.h"

#include <cstdint>
#include <stdexcept>

#include "metal/encode.h"
#include "metal/launch/softmax.h"
#include "mlx/allocator.h"
#include "mlx/backend/metal/utils.h"

namespace mlxr {

void Softmax::eval_gpu(const std::vector<mx::array>& inputs, std::vector<mx::array>& outputs) {
  // Buffer indices, in set_* order (the plan of csrc/metal/launch/softmax.h encodes them):
  //   set_input_array   x    -> 0
  //   set_output_array  out  -> 1
  //   set_bytes         axis_size (uint32) -> 2
  const mx::array& x = inputs[0];
  mx::array& out = outputs[0];
  metal::require_kernel_dtype("softmax", out);
  if (!x.flags().row_contiguous) {
    // The op inserts mx::contiguous on GPU streams, so this is a broken invariant.
    throw std::runtime_error("[softmax] the Metal kernel needs a row-contiguous x");
  }
  // Each thread reads its elements before writing them, and only its own (metal-sim certifies
  // it race-free in place), so a donated x is overwritten in place.
  metal::allocate_output(out, x);
  if (out.size() == 0) {
    return;
  }
  int64_t axis_size = 1;
  for (int i = x.ndim() - n_axes_; i < x.ndim(); ++i) {
    axis_size *= x.shape(i);
  }
  if (axis_size > static_cast<int64_t>(UINT32_MAX)) {
    throw std::runtime_error("[softmax] rows longer than 2^32 - 1 elements");
  }
  metal_launch::SoftmaxQuery query{
      static_cast<int64_t>(x.size()) / axis_size, axis_size, mx::type_to_name(out)};
  metal::encode_plan(metal_launch::softmax_plan, query, inputs, outputs, stream());
}

} // namespace mlxr
