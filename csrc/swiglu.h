// SwiGLU, the gated MLP activation: y = silu(gate) * up = gate * sigmoid(gate) * up, computed
// in float32 (float64 for float64) and rounded once to the output dtype, as reference/swiglu.py.
// Inputs arrive cast to the output dtype and broadcast to one shape (stride-0 views are read in
// place by the kernel).
#pragma once

#include "fused_primitive.h"

namespace mlxr {

class SwiGLU : public FusedPrimitive {
 public:
  SwiGLU(mx::Stream stream, Fallback fallback) : FusedPrimitive(stream, std::move(fallback)) {}

  MLXR_FUSED_PRIMITIVE_OVERRIDES
  MLXR_FUSED_EVAL_GPU // CUDA: csrc/cuda/swiglu.cu; Metal: csrc/metal/swiglu.cpp
  MLXR_FUSED_NAME(SwiGLU)
  MLXR_FUSED_SAME_SHAPE_OUTPUT

  // Closed-form derivatives (dy/du = silu(g), dy/dg = u * s * (1 + g * (1 - s)), s = sigmoid(g)).
  MLXR_FUSED_VJP
  MLXR_FUSED_JVP
  // Elementwise: batch axes move to the front (an unbatched input is broadcast) and it stays fused.
  MLXR_FUSED_VMAP
};

// Builds the fused op; gate and up have the same shape and dtype (the Python layer,
// fused/swiglu.py, validates, casts and broadcasts); `fallback` is the reference.
mx::array swiglu(const mx::array& gate, const mx::array& up, Fallback fallback, mx::Stream stream);

} // namespace mlxr
