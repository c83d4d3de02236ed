// The fallback-carrying primitive base (MLX's fast::Custom is not exported from libmlx).
// The fallback is the op's reference over arrays; the default vjp/jvp/vmap differentiate or
// batch it through MLX's transforms, so every fused op is correct under transforms from day
// one. Subclasses override a transform when they have something better (e.g. a fused vmap).
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "mlx/primitives.h"

namespace mlxr {

namespace mx = mlx::core;

using Fallback = std::function<std::vector<mx::array>(const std::vector<mx::array>&)>;

class FusedPrimitive : public mx::Primitive {
 public:
  FusedPrimitive(mx::Stream stream, Fallback fallback)
      : mx::Primitive(stream), fallback_(std::move(fallback)) {}

  // A subclass overrides eval_gpu only where a GPU backend for it is compiled; the op
  // function never builds the primitive on a device without a kernel.
  void eval_gpu(const std::vector<mx::array>& inputs, std::vector<mx::array>& outputs)
      override;

  std::vector<mx::array> vjp(
      const std::vector<mx::array>& primals,
      const std::vector<mx::array>& cotangents,
      const std::vector<int>& argnums,
      const std::vector<mx::array>& outputs) override;

  std::vector<mx::array> jvp(
      const std::vector<mx::array>& primals,
      const std::vector<mx::array>& tangents,
      const std::vector<int>& argnums) override;

  std::pair<std::vector<mx::array>, std::vector<int>> vmap(
      const std::vector<mx::array>& inputs,
      const std::vector<int>& axes) override;

  const Fallback& fallback() const {
    return fallback_;
  }

 private:
  Fallback fallback_;
};

} // namespace mlxr
