// The fallback-carrying primitive base (MLX's fast::Custom is not exported from libmlx).
// The fallback is the op's reference over arrays; the default vjp/jvp/vmap differentiate or
// batch it through MLX's transforms, so every fused op is correct under transforms from day
// one. Subclasses override a transform when they have something better (e.g. a fused vmap).
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "mlx/primitives.h"

// Member declarations the fused ops share, written once (MLX's primitives.h does the same with
// DEFINE_GRADS / DEFINE_VMAP); an op header keeps its parameters, its constructor and the
// comments that say why it overrides a transform.

// Every op: its CPU kernel and the comparison of all its parameters (csrc/<op>.cpp).
#define MLXR_FUSED_PRIMITIVE_OVERRIDES                                                  \
  void eval_cpu(const std::vector<mx::array>& inputs, std::vector<mx::array>& outputs) \
      override;                                                                         \
  bool is_equivalent(const mx::Primitive& other) const override;

// An op with GPU host code (csrc/cuda/<op>.cu, csrc/metal/<op>.cpp) declares eval_gpu only
// in builds that compile it; elsewhere FusedPrimitive's throwing one stays.
#ifdef MLXR_GPU
#define MLXR_FUSED_EVAL_GPU                                                             \
  void eval_gpu(const std::vector<mx::array>& inputs, std::vector<mx::array>& outputs) \
      override;
#else
#define MLXR_FUSED_EVAL_GPU
#endif

#define MLXR_FUSED_NAME(Class)        \
  const char* name() const override { \
    return "mlxr::" #Class;           \
  }

// One output with the first input's shape (mx.compile(shapeless=True) needs output_shapes).
#define MLXR_FUSED_SAME_SHAPE_OUTPUT                                                    \
  std::vector<mx::Shape> output_shapes(const std::vector<mx::array>& inputs) override { \
    return {inputs[0].shape()};                                                         \
  }

#define MLXR_FUSED_VJP                          \
  std::vector<mx::array> vjp(                   \
      const std::vector<mx::array>& primals,    \
      const std::vector<mx::array>& cotangents, \
      const std::vector<int>& argnums,          \
      const std::vector<mx::array>& outputs) override;

#define MLXR_FUSED_JVP                        \
  std::vector<mx::array> jvp(                 \
      const std::vector<mx::array>& primals,  \
      const std::vector<mx::array>& tangents, \
      const std::vector<int>& argnums) override;

#define MLXR_FUSED_VMAP                                     \
  std::pair<std::vector<mx::array>, std::vector<int>> vmap( \
      const std::vector<mx::array>& inputs,                 \
      const std::vector<int>& axes) override;

namespace mlxr {

namespace mx = mlx::core;

using Fallback = std::function<std::vector<mx::array>(const std::vector<mx::array>&)>;

// The dtype the fused ops (and their references) accumulate in: float64 for float64 input,
// float32 otherwise.
inline mx::Dtype accumulation_dtype(mx::Dtype dtype) {
  return dtype == mx::float64 ? mx::float64 : mx::float32;
}

class FusedPrimitive : public mx::Primitive {
 public:
  FusedPrimitive(mx::Stream stream, Fallback fallback)
      : mx::Primitive(stream), fallback_(std::move(fallback)) {}

  // A subclass overrides eval_gpu only where a GPU backend for it is compiled; the op
  // function never builds the primitive on a device without a kernel.
  void eval_gpu(const std::vector<mx::array>& inputs, std::vector<mx::array>& outputs)
      override;

  MLXR_FUSED_VJP
  MLXR_FUSED_JVP
  MLXR_FUSED_VMAP

  const Fallback& fallback() const {
    return fallback_;
  }

 private:
  Fallback fallback_;
};

} // namespace mlxr
