// Metal host code of the affine quantized matmul: kernels/quantized_matmul.metal, launched as
// csrc/metal/launch/quantized_matmul.h plans. Compiled only in Metal builds (MLXR_METAL).
#include "quantized_matmul.h"

#include <cstdint>
#include <stdexcept>

#include "kernel_log.h"
#include "metal/encode.h"
#include "metal/launch/quantized_matmul.h"
#include "mlx/allocator.h"
#include "mlx/backend/metal/utils.h"

namespace mlxr {

void QuantizedMatmul::eval_gpu(
    const std::vector<mx::array>& inputs,
    std::vector<mx::array>& outputs) {
  // Buffer indices, in set_* order (the plan of csrc/metal/launch/quantized_matmul.h encodes
  // them):
  //   set_input_array   x -> 0, w (uint32 words) -> 1, scales -> 2, biases -> 3
  //   set_output_array  out -> 4
  //   set_bytes         M (uint32) -> 5, N (uint32) -> 6, K (uint32) -> 7
  const mx::array& x = inputs[0];
  mx::array& out = outputs[0];
  if (out.dtype() != mx::float32 && out.dtype() != mx::float16 && out.dtype() != mx::bfloat16) {
    throw std::runtime_error("[quantized_matmul] no Metal kernel for this dtype");
  }
  if (x.dtype() != out.dtype() || inputs[1].dtype() != mx::uint32 ||
      inputs[2].dtype() != out.dtype() || inputs[3].dtype() != out.dtype()) {
    // The op casts x, scales and biases to the output dtype; the kernels read them as it.
    throw std::runtime_error("[quantized_matmul] Metal kernels need x/scales/biases in the output dtype");
  }
  for (const mx::array& in : inputs) {
    if (!in.flags().row_contiguous) {
      // The op inserts mx::contiguous on GPU streams, so this is a broken invariant.
      throw std::runtime_error("[quantized_matmul] the Metal kernels need row-contiguous inputs");
    }
  }
  out.set_data(mx::allocator::malloc(out.nbytes()));
  if (out.size() == 0) {
    return;
  }
  int64_t K = x.shape(-1);
  int64_t N = out.shape(-1);
  int64_t M = static_cast<int64_t>(out.size()) / N;
  if (M > UINT32_MAX || N > UINT32_MAX || K > UINT32_MAX) {
    throw std::runtime_error("[quantized_matmul] dimensions over 2^32 - 1");
  }
  metal_launch::QuantizedMatmulQuery query{
      M, N, K, transpose_, group_size_, bits_,
      mx::type_to_name(out)}; // kernel names end in float32 / float16 / bfloat16
  std::string kernel = metal::encode(
      [&](const metal_launch::DeviceLimits& limits) {
        return metal_launch::quantized_matmul_plan(query, limits);
      },
      inputs,
      outputs,
      stream());
  record_kernel("gpu", kernel);
}

} // namespace mlxr
