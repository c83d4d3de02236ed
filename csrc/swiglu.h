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

  void eval_cpu(const std::vector<mx::array>& inputs, std::vector<mx::array>& outputs)
      override;
#ifdef MLXR_GPU // CUDA: csrc/cuda/swiglu.cu; Metal: csrc/metal/swiglu.cpp
  void eval_gpu(const std::vector<mx::array>& inputs, std::vector<mx::array>& outputs)
      override;
#endif

  // Closed-form derivatives (dy/du = silu(g), dy/dg = u * s * (1 + g * (1 - s)), s = sigmoid(g)).
  std::vector<mx::array> vjp(
      const std::vector<mx::array>& primals,
      const std::vector<mx::array>& cotangents,
      const std::vector<int>& argnums,
      const std::vector<mx::array>& outputs) override;
  std::vector<mx::array> jvp(
      const std::vector<mx::array>& primals,
      const std::vector<mx::array>& tangents,
      const std::vector<int>& argnums) override;
  // Elementwise: batch axes move to the front (an unbatched input is broadcast) and it stays fused.
  std::pair<std::vector<mx::array>, std::vector<int>> vmap(
      const std::vector<mx::array>& inputs,
      const std::vector<int>& axes) override;

  const char* name() const override {
    return "mlxr::SwiGLU";
  }
  bool is_equivalent(const mx::Primitive& other) const override;
  std::vector<mx::Shape> output_shapes(const std::vector<mx::array>& inputs) override {
    return {inputs[0].shape()};
  }
};

// Builds the fused op; gate and up have the same shape and dtype (the Python layer,
// fused/swiglu.py, validates, casts and broadcasts); `fallback` is the reference.
mx::array swiglu(const mx::array& gate, const mx::array& up, Fallback fallback, mx::Stream stream);

} // namespace mlxr
