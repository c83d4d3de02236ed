// Storage <-> float conversions for the CPU kernels, written so loops over them vectorise.
#pragma once

#include <cstdint>
#include <cstring>

namespace mlxr::cpu {

inline float bits_to_float(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

inline uint32_t float_to_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

// bfloat16 is the top half of a float32; rounding matches MLX (nearest-even, NaN -> 0x7FC0).
inline float bf16_to_float(uint16_t b) {
  return bits_to_float(uint32_t(b) << 16);
}

inline uint16_t float_to_bf16(float f) {
  uint32_t u = float_to_bits(f);
  uint32_t rounded = (u + 0x7FFFu + ((u >> 16) & 1u)) >> 16;
  bool is_nan = (u & 0x7FFFFFFFu) > 0x7F800000u; // integer test: vectorises, unlike f != f
  return is_nan ? uint16_t(0x7FC0) : uint16_t(rounded);
}

#if defined(__FLT16_MAX__)
// _Float16 lets the compiler use hardware conversion (F16C, NEON) where the target has it.
inline float f16_to_float(uint16_t b) {
  _Float16 h;
  std::memcpy(&h, &b, 2);
  return static_cast<float>(h);
}

inline uint16_t float_to_f16(float f) {
  _Float16 h = static_cast<_Float16>(f);
  uint16_t b;
  std::memcpy(&b, &h, 2);
  return b;
}
#else
// Portable branch-free IEEE binary16 conversion (exact, round-to-nearest-even).
inline float f16_to_float(uint16_t h) {
  uint32_t w = uint32_t(h) << 16;
  uint32_t sign = w & 0x80000000u;
  uint32_t two_w = w + w;
  float normal = bits_to_float((two_w >> 4) + (0xE0u << 23)) * 0x1.0p-112f;
  float denormal = bits_to_float((two_w >> 17) | (126u << 23)) - 0.5f;
  uint32_t mag = two_w < (1u << 27) ? float_to_bits(denormal) : float_to_bits(normal);
  return bits_to_float(sign | mag);
}

inline uint16_t float_to_f16(float f) {
  float base = (__builtin_fabsf(f) * 0x1.0p+112f) * 0x1.0p-110f;
  uint32_t w = float_to_bits(f);
  uint32_t shl1_w = w + w;
  uint32_t sign = w & 0x80000000u;
  uint32_t bias = shl1_w & 0xFF000000u;
  if (bias < 0x71000000u) bias = 0x71000000u;
  base = bits_to_float((bias >> 1) + 0x07800000u) + base;
  uint32_t bits = float_to_bits(base);
  uint32_t exp_bits = (bits >> 13) & 0x00007C00u;
  uint32_t mantissa_bits = bits & 0x00000FFFu;
  uint32_t nonsign = exp_bits + mantissa_bits;
  return uint16_t((sign >> 16) | (shl1_w > 0xFF000000u ? 0x7E00u : nonsign));
}
#endif

// One struct per dtype: storage type, accumulation type and the two conversions.
struct F32 {
  using storage = float;
  using acc = float;
  static float load(float v) { return v; }
  static float store(float v) { return v; }
};

struct F64 {
  using storage = double;
  using acc = double;
  static double load(double v) { return v; }
  static double store(double v) { return v; }
};

struct F16 {
  using storage = uint16_t;
  using acc = float;
  static float load(uint16_t v) { return f16_to_float(v); }
  static uint16_t store(float v) { return float_to_f16(v); }
};

struct BF16 {
  using storage = uint16_t;
  using acc = float;
  static float load(uint16_t v) { return bf16_to_float(v); }
  static uint16_t store(float v) { return float_to_bf16(v); }
};

} // namespace mlxr::cpu
