// Metal host code of RMSNorm: kernels/rms_norm.metal, launched as csrc/metal/launch/rms_norm.h
// plans. Compiled only in Metal builds (csrc/metal/metal.cmake defines MLXR_GPU).
#include "rms_norm.h"

#include <cstdint>
#include <stdexcept>

#include "metal/encode.h"
#include "metal/launch/rms_norm.h"
#include "mlx/allocator.h"
#include "mlx/backend/metal/utils.h"

namespace mlxr {

void RMSNorm::eval_gpu(const std::vector<mx::array>& inputs, std::vector<mx::array>& outputs) {
  // Buffer indices, in set_* order (the plan of csrc/metal/launch/rms_norm.h encodes them):
  //   set_input_array   x       -> 0
  //   set_input_array   weight  -> 1  (x again when there is no weight; never read)
  //   set_output_array  out     -> 2
  //   set_bytes         eps (float) -> 3, axis_size (uint32) -> 4, w_stride (int64) -> 5,
  //                     has_weight (uint32) -> 6
  const mx::array& x = inputs[0];
  mx::array& out = outputs[0];
  int64_t axis_size = metal::row_size("rms_norm", x, out);
  // Each element is read before any thread writes it (metal-sim certifies it race-free in
  // place), so a donated x is overwritten in place.
  metal::allocate_output(out, x);
  if (out.size() == 0) {
    return;
  }
  metal_launch::RMSNormQuery query{
      static_cast<int64_t>(x.size()) / axis_size,
      axis_size,
      has_weight_ ? static_cast<int64_t>(inputs[1].strides()[0]) : 0,
      mx::type_to_name(out), // kernel names end in float32 / float16 / bfloat16
      has_weight_,
      static_cast<float>(eps_)};
  metal::encode_plan(metal_launch::rms_norm_plan, query, inputs, outputs, stream());
}

} // namespace mlxr
