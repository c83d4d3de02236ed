// The Metal launch plans (csrc/metal/launch/*.h, the headers the Metal host code uses) behind a
// C ABI, so the simulator dispatches exactly what the host would. One function per op.
#include <cstring>

#include "metal/launch/add_rms_norm.h"
#include "metal/launch/layer_norm.h"
#include "metal/launch/quantized_matmul.h"
#include "metal/launch/rms_norm.h"
#include "metal/launch/rope.h"
#include "metal/launch/softmax.h"
#include "metal/launch/swiglu.h"

#define MLXR_PLAN_EXPORT extern "C" __attribute__((visibility("default")))

namespace {

int64_t emit(const mlxr::metal_launch::Plan& plan, char* out, int64_t cap) {
  std::string json = mlxr::metal_launch::to_json(plan);
  if (static_cast<int64_t>(json.size()) < cap) {
    std::memcpy(out, json.c_str(), json.size() + 1);
  }
  return static_cast<int64_t>(json.size());
}

mlxr::metal_launch::DeviceLimits limits_of(int64_t max_threads_per_group) {
  mlxr::metal_launch::DeviceLimits limits;
  limits.max_threads_per_group = static_cast<size_t>(max_threads_per_group);
  return limits;
}

} // namespace

MLXR_PLAN_EXPORT int64_t mlxr_plan_rms_norm(int64_t n_rows, int64_t axis_size, int64_t w_stride,
                                            const char* dtype, int has_weight, float eps,
                                            int64_t max_threads_per_group, char* out, int64_t cap) {
  mlxr::metal_launch::RMSNormQuery q{n_rows, axis_size, w_stride, dtype, has_weight != 0, eps};
  return emit(mlxr::metal_launch::rms_norm_plan(q, limits_of(max_threads_per_group)), out, cap);
}

MLXR_PLAN_EXPORT int64_t mlxr_plan_layer_norm(int64_t n_rows, int64_t axis_size, int64_t w_stride,
                                              int64_t b_stride, const char* dtype, int has_weight,
                                              int has_bias, float eps,
                                              int64_t max_threads_per_group, char* out,
                                              int64_t cap) {
  mlxr::metal_launch::LayerNormQuery q{n_rows, axis_size, w_stride, b_stride, dtype,
                                       has_weight != 0, has_bias != 0, eps};
  return emit(mlxr::metal_launch::layer_norm_plan(q, limits_of(max_threads_per_group)), out, cap);
}

MLXR_PLAN_EXPORT int64_t mlxr_plan_add_rms_norm(int64_t n_rows, int64_t axis_size,
                                                int64_t w_stride, const char* dtype,
                                                int has_weight, float eps,
                                                int64_t max_threads_per_group, char* out,
                                                int64_t cap) {
  mlxr::metal_launch::AddRMSNormQuery q{n_rows, axis_size, w_stride, dtype, has_weight != 0, eps};
  return emit(mlxr::metal_launch::add_rms_norm_plan(q, limits_of(max_threads_per_group)), out, cap);
}

MLXR_PLAN_EXPORT int64_t mlxr_plan_rope(int64_t n_groups, int64_t n_t, int64_t n_m,
                                        int64_t row_size, int64_t dims, int64_t offset_stride,
                                        int64_t inv_stride, const char* dtype, int traditional,
                                        int forward, float scale, int64_t max_threads_per_group,
                                        char* out, int64_t cap) {
  mlxr::metal_launch::RopeQuery q{n_groups, n_t, n_m, row_size, dims, offset_stride, inv_stride,
                                  dtype, traditional != 0, forward != 0, scale};
  return emit(mlxr::metal_launch::rope_plan(q, limits_of(max_threads_per_group)), out, cap);
}

MLXR_PLAN_EXPORT int64_t mlxr_plan_softmax(int64_t n_rows, int64_t axis_size, const char* dtype,
                                           int64_t max_threads_per_group, char* out, int64_t cap) {
  mlxr::metal_launch::SoftmaxQuery q{n_rows, axis_size, dtype};
  return emit(mlxr::metal_launch::softmax_plan(q, limits_of(max_threads_per_group)), out, cap);
}

MLXR_PLAN_EXPORT int64_t mlxr_plan_swiglu(int64_t size, const char* dtype, int aligned,
                                          int64_t max_threads_per_group, char* out, int64_t cap) {
  mlxr::metal_launch::SwiGLUQuery q{size, dtype, aligned != 0};
  return emit(mlxr::metal_launch::swiglu_plan(q, limits_of(max_threads_per_group)), out, cap);
}

MLXR_PLAN_EXPORT int64_t mlxr_plan_quantized_matmul(int64_t M, int64_t N, int64_t K, int transpose,
                                                    int group_size, int bits, const char* dtype,
                                                    char* out, int64_t cap) {
  mlxr::metal_launch::QuantizedMatmulQuery q{M, N, K, transpose != 0, group_size, bits, dtype};
  return emit(mlxr::metal_launch::quantized_matmul_plan(q), out, cap);
}
