// Residual add + RMSNorm: h = x + residual (rounded to the output dtype), normed =
// RMSNorm(h) [* weight] with rms_norm.h's arithmetic. One pass over memory: x and residual
// are read once and both outputs written once (MLX needs an add, then a norm re-reading h).
#pragma once

#include <optional>

#include "fused_primitive.h"

namespace mlxr {

class AddRMSNorm : public FusedPrimitive {
 public:
  AddRMSNorm(mx::Stream stream, Fallback fallback, double eps, bool has_weight)
      : FusedPrimitive(stream, std::move(fallback)), eps_(eps), has_weight_(has_weight) {}

  MLXR_FUSED_PRIMITIVE_OVERRIDES
  MLXR_FUSED_EVAL_GPU
  MLXR_FUSED_NAME(AddRMSNorm)
  // outputs: {normed, h}
  std::vector<mx::Shape> output_shapes(const std::vector<mx::array>& inputs) override {
    return {inputs[0].shape(), inputs[0].shape()};
  }

  // Batched x / residual with a shared weight stays fused (an unbatched one of the two is
  // broadcast); a batched weight goes through the fallback.
  MLXR_FUSED_VMAP

 private:
  double eps_; // double: float64 inputs see the same eps as the float64 reference
  bool has_weight_;
};

// Builds the fused op, returning {normed, h}. Arguments are validated and cast to the output
// dtype by the Python layer (fused/add_rms_norm.py); `fallback` is the reference.
std::vector<mx::array> add_rms_norm(
    const mx::array& x,
    const mx::array& residual,
    const std::optional<mx::array>& weight,
    double eps,
    Fallback fallback,
    mx::Stream stream);

} // namespace mlxr
