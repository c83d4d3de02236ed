// RoPE kernels: the row at position t of offset group g is rotated by theta_i =
// ((t + offset[g]) * scale) * inv_freq_i (float32, each step rounded as reference/rope.py
// rounds it; -theta for the inverse map); pairs (x[2i], x[2i+1]) when traditional, else
// (x[i], x[i + dims/2]); features from dims on are copied. The rotation is computed in float32
// and rounded once to T. Host: csrc/metal/rope.cpp; launch plan and buffer layout:
// csrc/metal/launch/rope.h.
//
// Rows of x and out are contiguous (the op makes x row-contiguous on GPU streams); row
// r = (g * n_m + m) * n_t + t. A threadgroup takes one (g, t) and up to rows_per_group of its
// n_m rows (the heads), which share the angles: a thread computes the cos/sin of its pair once
// and applies them to each of those rows. Offsets (int32) and inverse frequencies (float32) may
// have any stride, including 0 and negative.
#include <metal_stdlib>

using namespace metal;

// One unit of a row: a rotated pair (units below dims / 2) or a copied feature.
template <typename T>
struct RopeRows {
  device const T* x;
  device T* out;
  uint row_size;
  uint dims;
  uint traditional;

  void rotate(size_t row, uint pair, float c, float s) const {
    uint half_dims = dims / 2;
    size_t i1 = row * row_size + (traditional != 0 ? 2 * pair : pair);
    size_t i2 = i1 + (traditional != 0 ? 1 : half_dims);
    float x1 = static_cast<float>(x[i1]);
    float x2 = static_cast<float>(x[i2]);
    out[i1] = static_cast<T>(x1 * c - x2 * s);
    out[i2] = static_cast<T>(x1 * s + x2 * c);
  }

  void copy(size_t row, uint feature) const {
    size_t i = row * row_size + feature;
    out[i] = x[i];
  }
};

// Unit u of rows m_begin .. m_end - 1 at (g, t).
template <typename T>
inline void rope_unit(
    thread const RopeRows<T>& rows,
    uint u,
    size_t first_row,
    uint n_rows,
    uint n_t,
    float position,
    device const float* inv_freqs,
    int64_t inv_stride,
    uint forward) {
  uint half_dims = rows.dims / 2;
  if (u >= half_dims) {
    for (uint m = 0; m < n_rows; ++m) {
      rows.copy(first_row + static_cast<size_t>(m) * n_t, rows.dims + (u - half_dims));
    }
    return;
  }
  float theta = position * inv_freqs[u * inv_stride];
  float c = metal::precise::cos(theta);
  float s = metal::precise::sin(theta);
  s = forward != 0 ? s : -s;
  for (uint m = 0; m < n_rows; ++m) {
    rows.rotate(first_row + static_cast<size_t>(m) * n_t, u, c, s);
  }
}

// The kernels' shared prologue: this threadgroup's rows and their position.
#define ROPE_PROLOGUE                                                                      \
  RopeRows<T> rows{x, out, row_size, dims, traditional};                                  \
  uint g = group_pos.x / n_t;                                                              \
  uint t = group_pos.x - g * n_t;                                                          \
  uint m_begin = group_pos.y * rows_per_group;                                             \
  uint n_rows = min(rows_per_group, n_m - m_begin);                                        \
  size_t first_row = (static_cast<size_t>(g) * n_m + m_begin) * n_t + t;                   \
  float position = (static_cast<float>(t) + static_cast<float>(offsets[g * offset_stride])) * \
      scale;                                                                               \
  uint units = dims / 2 + (row_size - dims);

#define ROPE_PARAMS                                           \
  device const T* x [[buffer(0)]],                            \
      device const int* offsets [[buffer(1)]],                \
      device const float* inv_freqs [[buffer(2)]],            \
      device T* out [[buffer(3)]],                            \
      constant uint& row_size [[buffer(4)]],                  \
      constant uint& dims [[buffer(5)]],                      \
      constant uint& n_t [[buffer(6)]],                       \
      constant uint& n_m [[buffer(7)]],                       \
      constant uint& rows_per_group [[buffer(8)]],            \
      constant int64_t& offset_stride [[buffer(9)]],          \
      constant int64_t& inv_stride [[buffer(10)]],            \
      constant float& scale [[buffer(11)]],                   \
      constant uint& traditional [[buffer(12)]],              \
      constant uint& forward [[buffer(13)]],                  \
      uint2 group_pos [[threadgroup_position_in_grid]],       \
      uint lid [[thread_position_in_threadgroup]]

// Rows of up to threads_per_threadgroup units: one unit per thread.
template <typename T>
[[kernel]] void rope_single(ROPE_PARAMS) {
  ROPE_PROLOGUE
  if (lid < units) {
    rope_unit(rows, lid, first_row, n_rows, n_t, position, inv_freqs, inv_stride, forward);
  }
}

// Rows of any length: units strided by the threadgroup's width.
template <typename T>
[[kernel]] void rope_looped(ROPE_PARAMS, uint n_threads [[threads_per_threadgroup]]) {
  ROPE_PROLOGUE
  for (uint u = lid; u < units; u += n_threads) {
    rope_unit(rows, u, first_row, n_rows, n_t, position, inv_freqs, inv_stride, forward);
  }
}

// Kernel names rope[_<variant>]_<dtype>; the one-unit-per-thread kernel is the unnamed variant.
#define instantiate_rope(name, type)                                                         \
  template [[host_name("rope_" #name)]] [[kernel]] decltype(rope_single<type>) rope_single<type>; \
  template [[host_name("rope_looped_" #name)]] [[kernel]] decltype(rope_looped<type>)        \
      rope_looped<type>;

instantiate_rope(float32, float)
instantiate_rope(float16, half)
instantiate_rope(bfloat16, bfloat)
