// RMSNorm: y = x / sqrt(mean(x^2, -1) + eps) [* weight], accumulated in float32 (float64 for
// float64 input); the normalised value is rounded to the output dtype before the weight
// multiply, exactly as reference/rms_norm.py does.
#pragma once

#include <optional>

#include "fused_primitive.h"

namespace mlxr {

// The GPU kernels address rows through at most this many leading axes (after collapsing
// contiguous ones); the builder flattens arrays with more.
inline constexpr int kGpuMaxRowDims = 6;

class RMSNorm : public FusedPrimitive {
 public:
  RMSNorm(mx::Stream stream, Fallback fallback, double eps, bool has_weight)
      : FusedPrimitive(stream, std::move(fallback)), eps_(eps), has_weight_(has_weight) {}

  MLXR_FUSED_PRIMITIVE_OVERRIDES
  MLXR_FUSED_EVAL_GPU
  MLXR_FUSED_NAME(RMSNorm)
  MLXR_FUSED_SAME_SHAPE_OUTPUT

  // Batched x with a shared weight stays fused; a batched weight goes through the fallback.
  MLXR_FUSED_VMAP

 private:
  double eps_; // double: float64 inputs see the same eps as the float64 reference
  bool has_weight_;
};

// Builds the fused op. Arguments are validated and cast to the output dtype by the Python
// layer (fused/rms_norm.py); `fallback` is the reference.
mx::array rms_norm(
    const mx::array& x,
    const std::optional<mx::array>& weight,
    double eps,
    Fallback fallback,
    mx::Stream stream);

} // namespace mlxr
