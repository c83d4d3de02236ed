// Affine quantized matmul, a drop-in for mx.quantized_matmul(mode="affine"):
// out = x @ w_hat.T (transpose) or x @ w_hat, where w_hat = scales * q + biases per group of
// `group_size` codes along w's last axis and q are `bits`-bit codes packed in uint32 words.
// Float32 accumulation; the result is rounded once to the output dtype.
#pragma once

#include "fused_primitive.h"

namespace mlxr {

class QuantizedMatmul : public FusedPrimitive {
 public:
  QuantizedMatmul(mx::Stream stream, Fallback fallback, bool transpose, int group_size, int bits)
      : FusedPrimitive(stream, std::move(fallback)),
        transpose_(transpose),
        group_size_(group_size),
        bits_(bits) {}

  MLXR_FUSED_PRIMITIVE_OVERRIDES
  MLXR_FUSED_EVAL_GPU // csrc/cuda/quantized_matmul.cu, csrc/metal/quantized_matmul.cpp
  MLXR_FUSED_NAME(QuantizedMatmul)
  std::vector<mx::Shape> output_shapes(const std::vector<mx::array>& inputs) override;

  // d/dx is the same fused op with `transpose` flipped; scales and biases differentiate
  // through the reference; the packed codes are not differentiable (ValueError).
  MLXR_FUSED_VJP

  // The op is linear in x and jointly linear in (scales, biases): every tangent is again a
  // fused quantized matmul.
  MLXR_FUSED_JVP

  // A batched x with shared weights stays fused; batched weights go through the fallback.
  MLXR_FUSED_VMAP

 private:
  bool transpose_;
  int group_size_;
  int bits_;
};

// Builds the fused op. Arguments are validated by the Python layer (fused/quantized_matmul.py):
// w is 2-D uint32, x/scales/biases already have the output dtype; `fallback` is the reference.
mx::array quantized_matmul(
    const mx::array& x,
    const mx::array& w,
    const mx::array& scales,
    const mx::array& biases,
    bool transpose,
    int group_size,
    int bits,
    Fallback fallback,
    mx::Stream stream);

} // namespace mlxr
