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

  MLXR_FUSED_PRIMITIVE_OVERRIDES
  MLXR_FUSED_EVAL_GPU // CUDA: csrc/cuda/softmax.cu; Metal: csrc/metal/softmax.cpp
  MLXR_FUSED_NAME(Softmax)
  MLXR_FUSED_SAME_SHAPE_OUTPUT

  // dy = y * (dx - sum(dx * y)) for both: one expression over the primal output, no refold of
  // the reference's max/exp/sum graph.
  MLXR_FUSED_VJP
  MLXR_FUSED_JVP
  // The batch axis moves to the front, leaving the softmax axes last: stays fused.
  MLXR_FUSED_VMAP

 private:
  int n_axes_; // the softmax runs over the last n_axes axes, 1 <= n_axes <= ndim
};

// Builds the fused op over the last n_axes axes of x (1 <= n_axes <= ndim, floating dtype,
// validated by the Python layer); `fallback` is the reference over those axes.
mx::array softmax(const mx::array& x, int n_axes, Fallback fallback, mx::Stream stream);

} // namespace mlxr
