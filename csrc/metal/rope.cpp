// Metal host code of RoPE: kernels/rope.metal, launched as csrc/metal/launch/rope.h plans.
// Compiled only in Metal builds (csrc/metal/metal.cmake defines MLXR_GPU).
#include "rope.h"

#include <cstdint>
#include <stdexcept>

#include "metal/encode.h"
#include "metal/launch/rope.h"
#include "mlx/backend/metal/utils.h"

namespace mlxr {

void RoPE::eval_gpu(const std::vector<mx::array>& inputs, std::vector<mx::array>& outputs) {
  // Buffer indices, in set_* order (the plan of csrc/metal/launch/rope.h encodes them):
  //   set_input_array   x          -> 0
  //   set_input_array   offset     -> 1  (int32, 1 or B of them)
  //   set_input_array   inv_freqs  -> 2  (float32, dims / 2 of them)
  //   set_output_array  out        -> 3
  //   set_bytes         row_size -> 4, dims -> 5, n_t -> 6, n_m -> 7, rows_per_group -> 8
  //                     (uint32), offset_stride -> 9, inv_stride -> 10 (int64), scale (float)
  //                     -> 11, traditional -> 12, forward -> 13 (uint32)
  const mx::array& x = inputs[0];
  const mx::array& offset = inputs[1];
  const mx::array& inv_freqs = inputs[2];
  mx::array& out = outputs[0];
  int64_t row_size = metal::row_size("rope", x, out);
  if (inv_freqs.dtype() != mx::float32 || offset.dtype() != mx::int32) {
    throw std::runtime_error("[rope] the Metal kernel takes int32 offsets and float32 frequencies");
  }
  // Each element is read and then written by the same thread: a donated x is rotated in place.
  metal::allocate_output(out, x);
  if (out.size() == 0) {
    return;
  }
  int64_t n_rows = static_cast<int64_t>(x.size()) / row_size;
  if (n_rows > static_cast<int64_t>(UINT32_MAX)) {
    throw std::runtime_error("[rope] more than 2^32 - 1 rows");
  }
  int64_t n_groups = offset.size() > 1 ? static_cast<int64_t>(offset.size()) : 1;
  int64_t n_t = x.shape(-2);
  auto stride = [](const mx::array& a) { return a.ndim() ? static_cast<int64_t>(a.strides()[0]) : 0; };
  metal_launch::RopeQuery query{
      n_groups,
      n_t,
      n_rows / (n_groups * n_t),
      row_size,
      dims_,
      stride(offset),
      stride(inv_freqs),
      mx::type_to_name(out), // kernel names end in float32 / float16 / bfloat16
      traditional_,
      forward_,
      static_cast<float>(scale_)};
  metal::encode_plan(metal_launch::rope_plan, query, inputs, outputs, stream());
}

} // namespace mlxr
