// Softmax over the last axis: y = exp(x - max(x)) / sum(exp(x - max(x))), computed in float32
// (float64 for float64 input) and rounded once to the input dtype, as reference/softmax.py does.
// Other axes are moved to the last one by the Python layer (fused/softmax.py).
#pragma once

#include "fused_primitive.h"

namespace mlxr {

class Softmax : public FusedPrimitive {
 public:
  Softmax(mx::Stream stream, Fallback fallback) : FusedPrimitive(stream, std::move(fallback)) {}

  void eval_cpu(const std::vector<mx::array>& inputs, std::vector<mx::array>& outputs)
      override;

  // dy = y * (dx - sum(dx * y)) for both: one expression over the primal output, no refold of
  // the reference's max/exp/sum graph.
  std::vector<mx::array> vjp(
      const std::vector<mx::array>& primals,
      const std::vector<mx::array>& cotangents,
      const std::vector<int>& argnums,
      const std::vector<mx::array>& outputs) override;
  std::vector<mx::array> jvp(
      const std::vector<mx::array>& primals,
      const std::vector<mx::array>& tangents,
      const std::vector<int>& argnums) override;
  // Any batch axis other than the last leaves the softmax axis last: stays fused.
  std::pair<std::vector<mx::array>, std::vector<int>> vmap(
      const std::vector<mx::array>& inputs,
      const std::vector<int>& axes) override;

  const char* name() const override {
    return "mlxr::Softmax";
  }
  bool is_equivalent(const mx::Primitive& other) const override;
  std::vector<mx::Shape> output_shapes(const std::vector<mx::array>& inputs) override {
    return {inputs[0].shape()};
  }
};

// Builds the fused op over the last axis of x (ndim >= 1, floating dtype, validated by the
// Python layer); `fallback` is the reference over the last axis.
mx::array softmax(const mx::array& x, Fallback fallback, mx::Stream stream);

} // namespace mlxr
