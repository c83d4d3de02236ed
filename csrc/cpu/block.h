// A block of kBlock elements in accumulator precision, as a GCC/Clang vector: loads convert
// from storage, stores round back. Vector types make the arithmetic on a block one vector op
// on every ISA (the compiler splits it to the widths the target has), where arrays of lanes
// left the vectoriser to chance. float16 and bfloat16 get explicit F16C/AVX-512 conversions.
#pragma once

#include <cstring>

#include "cpu/convert.h"
#include "cpu/isa.h"

#ifdef MLXR_X86_DISPATCH
#include <immintrin.h>
#endif

namespace mlxr::cpu {

constexpr int kBlock = 16;

template <typename T>
struct VecOf {
  typedef T type __attribute__((vector_size(kBlock * sizeof(T))));
};
template <typename T>
using Vec = typename VecOf<T>::type;

using VecU16 = Vec<uint16_t>;
using VecU32 = Vec<uint32_t>;

template <typename V>
MLXR_INLINE V load_vec(const void* src) {
  V v;
  std::memcpy(&v, src, sizeof(V));
  return v;
}

template <typename V>
MLXR_INLINE void store_vec(V v, void* dst) {
  std::memcpy(dst, &v, sizeof(V));
}

template <typename V>
MLXR_INLINE V broadcast(typename std::remove_reference_t<decltype(V{}[0])> value) {
  return V{} + value;
}

// Horizontal sum in a fixed order (bitwise reproducible).
template <typename V>
MLXR_INLINE auto reduce_sum(V v) {
  // Start from zero, not v[0] - v[0]: that is NaN when v[0] is +-Inf (overflowed squares).
  decltype(v[0] + v[0]) total = 0;
  for (int j = 0; j < kBlock; ++j) {
    total += v[j];
  }
  return total;
}

template <typename D, typename Isa>
struct Block {
  using V = Vec<typename D::acc>;
  static MLXR_INLINE V load(const typename D::storage* src) {
    return load_vec<V>(src);
  }
  static MLXR_INLINE void store(V v, typename D::storage* dst) {
    store_vec(v, dst);
  }
};

template <typename Isa>
struct Block<BF16, Isa> {
  using V = Vec<float>;
  static MLXR_INLINE V load(const uint16_t* src) {
    VecU32 wide = __builtin_convertvector(load_vec<VecU16>(src), VecU32) << 16;
    return reinterpret_cast<V&>(wide);
  }
  static MLXR_INLINE void store(V v, uint16_t* dst) {
    VecU32 u = reinterpret_cast<VecU32&>(v);
    VecU32 rounded = (u + 0x7FFFu + ((u >> 16) & 1u)) >> 16;
    auto is_nan = (u & 0x7FFFFFFFu) > 0x7F800000u;
    rounded = is_nan ? broadcast<VecU32>(0x7FC0u) : rounded;
    store_vec(__builtin_convertvector(rounded, VecU16), dst);
  }
};

template <typename Isa>
struct Block<F16, Isa> {
  using V = Vec<float>;
#if defined(__FLT16_MAX__)
  typedef _Float16 VecH __attribute__((vector_size(kBlock * 2)));
  static MLXR_INLINE V load(const uint16_t* src) {
    return __builtin_convertvector(load_vec<VecH>(src), V);
  }
  static MLXR_INLINE void store(V v, uint16_t* dst) {
    store_vec(__builtin_convertvector(v, VecH), dst);
  }
#else
  static MLXR_INLINE V load(const uint16_t* src) {
    V v;
    for (int j = 0; j < kBlock; ++j) {
      v[j] = f16_to_float(src[j]);
    }
    return v;
  }
  static MLXR_INLINE void store(V v, uint16_t* dst) {
    for (int j = 0; j < kBlock; ++j) {
      dst[j] = float_to_f16(v[j]);
    }
  }
#endif
};

#ifdef MLXR_X86_DISPATCH
// Compilers do not vectorise _Float16 conversions on x86: use F16C directly.
template <>
struct Block<F16, IsaAvx512> {
  using V = Vec<float>;
  MLXR_TARGET_AVX512 static inline V load(const uint16_t* src) {
    __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src));
    return V(_mm512_cvtph_ps(h));
  }
  MLXR_TARGET_AVX512 static inline void store(V v, uint16_t* dst) {
    __m256i h = _mm512_cvtps_ph(__m512(v), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst), h);
  }
};

template <>
struct Block<F16, IsaAvx2> {
  using V = Vec<float>;
  MLXR_TARGET_AVX2 static inline V load(const uint16_t* src) {
    V v;
    __m256 lo = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src)));
    __m256 hi = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + 8)));
    std::memcpy(&v, &lo, 32);
    std::memcpy(reinterpret_cast<char*>(&v) + 32, &hi, 32);
    return v;
  }
  MLXR_TARGET_AVX2 static inline void store(V v, uint16_t* dst) {
    __m256 lo, hi;
    std::memcpy(&lo, &v, 32);
    std::memcpy(&hi, reinterpret_cast<char*>(&v) + 32, 32);
    constexpr int mode = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst), _mm256_cvtps_ph(lo, mode));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + 8), _mm256_cvtps_ph(hi, mode));
  }
};
#endif

} // namespace mlxr::cpu
