// LayerNorm: y = (x - mean) / sqrt(var + eps) [* weight] [+ bias] over the last axis, with
// mean and (biased) variance accumulated in float32 (float64 for float64 input); the
// normalised value is rounded to the output dtype, then the weight multiply and the bias add
// each round to it, exactly as reference/layer_norm.py does.
#pragma once

#include <optional>

#include "fused_primitive.h"

namespace mlxr {

class LayerNorm : public FusedPrimitive {
 public:
  LayerNorm(mx::Stream stream, Fallback fallback, double eps, bool has_weight, bool has_bias)
      : FusedPrimitive(stream, std::move(fallback)),
        eps_(eps),
        has_weight_(has_weight),
        has_bias_(has_bias) {}

  MLXR_FUSED_PRIMITIVE_OVERRIDES
  MLXR_FUSED_EVAL_GPU
  MLXR_FUSED_NAME(LayerNorm)
  MLXR_FUSED_SAME_SHAPE_OUTPUT

  // Batched x with shared weight and bias stays fused; a batched weight or bias goes through
  // the fallback.
  MLXR_FUSED_VMAP

 private:
  double eps_; // double: float64 inputs see the same eps as the float64 reference
  bool has_weight_;
  bool has_bias_;
};

// Builds the fused op. Arguments are validated and cast to the output dtype by the Python
// layer (fused/layer_norm.py); `fallback` is the reference. Inputs are x, then the weight and
// the bias where present.
mx::array layer_norm(
    const mx::array& x,
    const std::optional<mx::array>& weight,
    const std::optional<mx::array>& bias,
    double eps,
    Fallback fallback,
    mx::Stream stream);

} // namespace mlxr
