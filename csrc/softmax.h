// Softmax over the last n_axes axes (flattened into one): y = exp(x - max(x)) / sum(exp(x -
// max(x))), computed in float32 (float64 for float64 input) and rounded once to the input
// dtype, as reference/softmax.py does. The Python layer (fused/softmax.py) transposes other
// axes to the end (a view): no reshape, so mx.compile(shapeless=True) traces stay valid.
#pragma once

#include "fused_primitive.h"

namespace mlxr {

class Softmax : public FusedPrimitive {
 public:
  Softmax(mx::Stream stream, Fallback fallback, int n_axes)
      : FusedPrimitive(stream, std::move(fallback)), n_axes_(n_axes) {}

  void eval_cpu(const std::vector<mx::array>& inputs, std::vector<mx::array>& outputs)
      override;
#ifdef MLXR_GPU // CUDA: csrc/cuda/softmax.cu; Metal: csrc/metal/softmax.cpp
  void eval_gpu(const std::vector<mx::array>& inputs, std::vector<mx::array>& outputs)
      override;
#endif

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
  // The batch axis moves to the front, leaving the softmax axes last: stays fused.
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

 private:
  int n_axes_; // the softmax runs over the last n_axes axes, 1 <= n_axes <= ndim
};

// Builds the fused op over the last n_axes axes of x (1 <= n_axes <= ndim, floating dtype,
// validated by the Python layer); `fallback` is the reference over those axes.
mx::array softmax(const mx::array& x, int n_axes, Fallback fallback, mx::Stream stream);

} // namespace mlxr
