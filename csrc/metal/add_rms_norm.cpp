// Metal host code of the residual add + RMSNorm: kernels/add_rms_norm.metal, launched as
// csrc/metal/launch/add_rms_norm.h plans. Compiled only in Metal builds (csrc/metal/metal.cmake
// defines MLXR_GPU).
#include "add_rms_norm.h"

#include <cstdint>
#include <stdexcept>

#include "metal/encode.h"
#include "metal/launch/add_rms_norm.h"
#include "mlx/backend/metal/utils.h"

namespace mlxr {

void AddRMSNorm::eval_gpu(const std::vector<mx::array>& inputs, std::vector<mx::array>& outputs) {
  // Buffer indices, in set_* order (the plan of csrc/metal/launch/add_rms_norm.h encodes them):
  //   set_input_array   x         -> 0
  //   set_input_array   residual  -> 1
  //   set_input_array   weight    -> 2  (x again when there is no weight; never read)
  //   set_output_array  normed    -> 3
  //   set_output_array  h         -> 4
  //   set_bytes         eps (float) -> 5, axis_size (uint32) -> 6, w_stride (int64) -> 7,
  //                     has_weight (uint32) -> 8
  const mx::array& x = inputs[0];
  const mx::array& residual = inputs[1];
  mx::array& normed = outputs[0];
  mx::array& h = outputs[1];
  int64_t axis_size = metal::row_size("add_rms_norm", x, normed);
  if (!residual.flags().row_contiguous) {
    throw std::runtime_error("[add_rms_norm] the Metal kernel needs a row-contiguous residual");
  }
  // The usual decoder loop donates the old residual stream to the new one; each element of
  // h (normed) is written by the thread that read it from residual (x).
  metal::allocate_output(normed, x);
  metal::allocate_output(h, residual);
  if (normed.size() == 0) {
    return;
  }
  metal_launch::AddRMSNormQuery query{
      static_cast<int64_t>(x.size()) / axis_size,
      axis_size,
      has_weight_ ? static_cast<int64_t>(inputs[2].strides()[0]) : 0,
      mx::type_to_name(normed), // kernel names end in float32 / float16 / bfloat16
      has_weight_,
      static_cast<float>(eps_)};
  metal::encode_plan(metal_launch::add_rms_norm_plan, query, inputs, outputs, stream());
}

} // namespace mlxr
