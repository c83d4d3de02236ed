#include "fused_primitive.h"

#include <stdexcept>

#include "mlx/ops.h"
#include "mlx/transforms.h"

namespace mlxr {

void FusedPrimitive::eval_gpu(const std::vector<mx::array>&, std::vector<mx::array>&) {
  throw std::runtime_error(
      std::string("[") + name() + "] this build has no GPU kernel for this op");
}

std::vector<mx::array> FusedPrimitive::vjp(
    const std::vector<mx::array>& primals,
    const std::vector<mx::array>& cotangents,
    const std::vector<int>& argnums,
    const std::vector<mx::array>&) {
  auto [outputs, grads] = mx::vjp(fallback_, primals, cotangents);
  std::vector<mx::array> selected;
  for (int arg : argnums) {
    selected.push_back(grads[arg]);
  }
  return selected;
}

std::vector<mx::array> FusedPrimitive::jvp(
    const std::vector<mx::array>& primals,
    const std::vector<mx::array>& tangents,
    const std::vector<int>& argnums) {
  // MLX passes tangents only for argnums; the others get zeros.
  std::vector<mx::array> all_tangents;
  for (size_t i = 0, j = 0; i < primals.size(); ++i) {
    if (j < argnums.size() && argnums[j] == static_cast<int>(i)) {
      all_tangents.push_back(tangents[j++]);
    } else {
      all_tangents.push_back(mx::zeros_like(primals[i], stream()));
    }
  }
  return mx::jvp(fallback_, primals, all_tangents).second;
}

std::pair<std::vector<mx::array>, std::vector<int>> FusedPrimitive::vmap(
    const std::vector<mx::array>& inputs,
    const std::vector<int>& axes) {
  auto outputs = mx::vmap(fallback_, axes)(inputs);
  return {outputs, std::vector<int>(outputs.size(), 0)};
}

} // namespace mlxr
