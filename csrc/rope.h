// RoPE: for the row at position t (axis -2) of batch b, p = (t + offset[b]) * scale and
// theta_i = p * inv_freq_i; pairs (x[2i], x[2i+1]) (traditional) or (x[i], x[i + dims/2]) are
// rotated by theta_i (by -theta_i when !forward, the inverse map and the vjp); features past
// `dims` pass through. Angles and the rotation are in float32 (float64 for float64), rounded
// once to the output dtype, as reference/rope.py does.
#pragma once

#include "fused_primitive.h"

namespace mlxr {

// Inputs: x (B, *, T, D); offset int32 of size 1 or B; inv_freqs (dims/2,) in the accumulation
// dtype (float32, float64 for float64 x). The inverse frequencies come from the reference's
// rope_inv_freqs, so base-derived angles agree with it bit for bit.
class RoPE : public FusedPrimitive {
 public:
  RoPE(mx::Stream stream, Fallback fallback, Fallback inverse, int dims, bool traditional,
       double scale, bool forward)
      : FusedPrimitive(stream, std::move(fallback)),
        inverse_(std::move(inverse)),
        dims_(dims),
        traditional_(traditional),
        scale_(scale),
        forward_(forward) {}

  MLXR_FUSED_PRIMITIVE_OVERRIDES
  MLXR_FUSED_EVAL_GPU
  const char* name() const override {
    return forward_ ? "mlxr::RoPE" : "mlxr::RoPEInverse";
  }
  MLXR_FUSED_SAME_SHAPE_OUTPUT

  // The map is linear in x: the x-vjp is the inverse rotation and the x-jvp the rotation
  // itself, both fused. Derivatives through inv_freqs go through the fallback.
  MLXR_FUSED_VJP
  MLXR_FUSED_JVP
  MLXR_FUSED_VMAP

 private:
  Fallback inverse_; // the reference of the inverse map, carried by the vjp's primitive
  int dims_;
  bool traditional_;
  double scale_; // double: float64 inputs see the same scale as the float64 reference
  bool forward_;
};

// Builds the fused op. Arguments are validated by fused/rope.py; `fallback` and `inverse` are
// the reference's rope_rotate over (x, offset, inv_freqs) for this direction and the other.
mx::array rope(
    const mx::array& x,
    const mx::array& offset,
    const mx::array& inv_freqs,
    int dims,
    bool traditional,
    double scale,
    bool forward,
    Fallback fallback,
    Fallback inverse,
    mx::Stream stream);

} // namespace mlxr
