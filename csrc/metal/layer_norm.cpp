// Metal host code of LayerNorm: kernels/layer_norm.metal, launched as
// csrc/metal/launch/layer_norm.h plans. Compiled only in Metal builds (csrc/metal/metal.cmake
// defines MLXR_GPU).
#include "layer_norm.h"

#include <cstdint>

#include "metal/encode.h"
#include "metal/launch/layer_norm.h"
#include "mlx/backend/metal/utils.h"

namespace mlxr {

void LayerNorm::eval_gpu(const std::vector<mx::array>& inputs, std::vector<mx::array>& outputs) {
  // Buffer indices, in set_* order (the plan of csrc/metal/launch/layer_norm.h encodes them):
  //   set_input_array   x       -> 0
  //   set_input_array   weight  -> 1  (x again when there is no weight; never read)
  //   set_input_array   bias    -> 2  (x again when there is no bias; never read)
  //   set_output_array  out     -> 3
  //   set_bytes         eps (float) -> 4, axis_size (uint32) -> 5, w_stride (int64) -> 6,
  //                     b_stride (int64) -> 7, has_weight (uint32) -> 8, has_bias (uint32) -> 9
  const mx::array& x = inputs[0];
  mx::array& out = outputs[0];
  int64_t axis_size = metal::row_size("layer_norm", x, out);
  metal::allocate_output(out, x);
  if (out.size() == 0) {
    return;
  }
  auto stride = [&](bool present, size_t input) {
    return present ? static_cast<int64_t>(inputs[input].strides()[0]) : 0;
  };
  metal_launch::LayerNormQuery query{
      static_cast<int64_t>(x.size()) / axis_size,
      axis_size,
      stride(has_weight_, 1),
      stride(has_bias_, has_weight_ ? 2 : 1),
      mx::type_to_name(out), // kernel names end in float32 / float16 / bfloat16
      has_weight_,
      has_bias_,
      static_cast<float>(eps_)};
  metal::encode_plan(metal_launch::layer_norm_plan, query, inputs, outputs, stream());
}

} // namespace mlxr
