// SwiGLU kernels: y = round_T((g * sigmoid(g)) * u), sigmoid(g) = 1 / (1 + exp(-g)), in float32
// (reference/swiglu.py's order). Host: csrc/metal/swiglu.cpp; launch plan and buffer layout:
// csrc/metal/launch/swiglu.h. gate, up and out are contiguous, of one shape and dtype (the op
// casts, broadcasts and copies on GPU streams).
//
// Each thread handles kWork consecutive elements: one vec<T, kWork> load of gate and of up and
// one store where the buffers are kWork-element aligned (swiglu_<dtype>), element by element
// otherwise (swiglu_unaligned_<dtype>); the last thread takes the tail of size % kWork.
#include <metal_stdlib>

using namespace metal;

// Elements per thread; kept equal to kSwiGLUWork in the launch plan.
constant constexpr uint kWork = 4;

inline float swiglu_value(float gate, float up) {
  float sigmoid = 1.0f / (1.0f + exp(-gate));
  return gate * sigmoid * up;
}

template <typename T, bool kVector>
[[kernel]] void swiglu(
    device const T* gate [[buffer(0)]],
    device const T* up [[buffer(1)]],
    device T* out [[buffer(2)]],
    constant int64_t& size [[buffer(3)]],
    uint index [[thread_position_in_grid]]) {
  int64_t first = static_cast<int64_t>(index) * kWork;
  if (kVector && first + kWork <= size) {
    vec<T, kWork> g = ((device const vec<T, kWork>*)gate)[index];
    vec<T, kWork> u = ((device const vec<T, kWork>*)up)[index];
    vec<T, kWork> y;
    for (uint k = 0; k < kWork; ++k) {
      y[k] = static_cast<T>(swiglu_value(static_cast<float>(g[k]), static_cast<float>(u[k])));
    }
    ((device vec<T, kWork>*)out)[index] = y;
    return;
  }
  for (int64_t i = first; i < first + kWork && i < size; ++i) {
    out[i] = static_cast<T>(swiglu_value(static_cast<float>(gate[i]), static_cast<float>(up[i])));
  }
}

// Kernel names swiglu[_<variant>]_<dtype>; the aligned (vector) kernel is the unnamed variant.
#define instantiate_swiglu(name, type)                                                       \
  template [[host_name("swiglu_" #name)]] [[kernel]] decltype(swiglu<type, true>)            \
      swiglu<type, true>;                                                                    \
  template [[host_name("swiglu_unaligned_" #name)]] [[kernel]] decltype(swiglu<type, false>) \
      swiglu<type, false>;

instantiate_swiglu(float32, float)
instantiate_swiglu(float16, half)
instantiate_swiglu(bfloat16, bfloat)
