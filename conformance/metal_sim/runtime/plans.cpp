// The Metal launch plans (csrc/metal/launch/*.h, the headers the Metal host code uses) behind a
// C ABI, so the simulator dispatches exactly what the host would. One function per op.
#include <cstring>

#include "metal/launch/quantized_matmul.h"
#include "metal/launch/rms_norm.h"

#define MLXR_PLAN_EXPORT extern "C" __attribute__((visibility("default")))

namespace {

int64_t emit(const mlxr::metal_launch::Plan& plan, char* out, int64_t cap) {
  std::string json = mlxr::metal_launch::to_json(plan);
  if (static_cast<int64_t>(json.size()) < cap) {
    std::memcpy(out, json.c_str(), json.size() + 1);
  }
  return static_cast<int64_t>(json.size());
}

} // namespace

MLXR_PLAN_EXPORT int64_t mlxr_plan_rms_norm(int64_t n_rows, int64_t axis_size, int64_t w_stride,
                                            const char* dtype, int has_weight, float eps,
                                            int64_t max_threads_per_group, char* out, int64_t cap) {
  mlxr::metal_launch::RMSNormQuery q{n_rows, axis_size, w_stride, dtype, has_weight != 0, eps};
  mlxr::metal_launch::DeviceLimits limits;
  limits.max_threads_per_group = static_cast<size_t>(max_threads_per_group);
  return emit(mlxr::metal_launch::rms_norm_plan(q, limits), out, cap);
}

MLXR_PLAN_EXPORT int64_t mlxr_plan_quantized_matmul(int64_t M, int64_t N, int64_t K, int transpose,
                                                    int group_size, int bits, const char* dtype,
                                                    char* out, int64_t cap) {
  mlxr::metal_launch::QuantizedMatmulQuery q{M, N, K, transpose != 0, group_size, bits, dtype};
  return emit(mlxr::metal_launch::quantized_matmul_plan(q), out, cap);
}
