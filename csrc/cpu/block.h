// A block of kBlock elements in accumulator precision, as a GCC/Clang vector: loads convert
// from storage, stores round back. Vector types make the arithmetic on a block one vector op
// on every ISA (the compiler splits it to the widths the target has), where arrays of lanes
// left the vectoriser to chance. float16 and bfloat16 get explicit F16C/AVX-512 conversions.
#pragma once

#include <cstring>
#include <type_traits>
#include <utility>

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

// Horizontal sum in a fixed order (bitwise reproducible). Starts from +0, not v[0] - v[0],
// which is NaN when lane 0 overflowed to inf.
template <typename V>
MLXR_INLINE auto reduce_sum(V v) {
  decltype(+v[0]) total = 0;
  for (int j = 0; j < kBlock; ++j) {
    total += v[j];
  }
  return total;
}

// Widest vector each ISA keeps in one register. GCC spills a generic vector wider than this
// to the stack whenever it is stored or carried across loop iterations (an AVX2 build of
// 64-byte blocks ran at 2-7 GB/s), so wide blocks move through memory and loop-carried
// state in pieces of this size.
template <typename Isa>
constexpr int kNativeBytes = 16; // SSE2 / NEON
#ifdef MLXR_X86_DISPATCH
template <>
constexpr int kNativeBytes<IsaAvx2> = 32;
template <>
constexpr int kNativeBytes<IsaAvx512> = 64;
#endif

// The vector of `Lanes` elements of V's element type.
template <typename V, int Lanes>
struct Resize {
  using elem = std::remove_cv_t<std::remove_reference_t<decltype(V{}[0])>>;
  typedef elem type __attribute__((vector_size(Lanes * sizeof(elem))));
};

// Lanes [First, First + Count) of v. A memcpy from the vector lowers to a plain sub-register
// read; __builtin_shufflevector of a vector wider than the ISA's registers is lowered lane by lane.
template <int First, int Count, typename V>
MLXR_INLINE auto slice(V v) {
  using Out = typename Resize<V, Count>::type;
  Out out;
  std::memcpy(&out, reinterpret_cast<const char*>(&v) + First * sizeof(v[0]), sizeof(Out));
  return out;
}

// [lo, hi] as one vector of twice the lanes.
template <typename H>
MLXR_INLINE auto concat(H lo, H hi) {
  typename Resize<H, 2 * sizeof(H) / sizeof(lo[0])>::type v;
  std::memcpy(&v, &lo, sizeof(H));
  std::memcpy(reinterpret_cast<char*>(&v) + sizeof(H), &hi, sizeof(H));
  return v;
}

// Loads and stores of V in pieces of at most Bytes bytes (a whole-vector memcpy load already
// lowers to native loads; a whole-vector store goes through the stack).
template <int Bytes, typename V>
MLXR_INLINE V load_split(const void* src) {
  return load_vec<V>(src);
}
template <int Bytes, typename V>
MLXR_INLINE void store_split(V v, void* dst) {
  if constexpr (sizeof(V) <= Bytes) {
    store_vec(v, dst);
  } else {
    constexpr int half = sizeof(V) / sizeof(v[0]) / 2;
    store_split<Bytes>(slice<0, half>(v), dst);
    store_split<Bytes>(slice<half, half>(v), static_cast<char*>(dst) + sizeof(v) / 2);
  }
}

// sum += term with Kahan compensation: carry keeps what sum's rounding lost (lane-wise).
template <typename V>
MLXR_INLINE void kahan_add(V& sum, V& carry, V term) {
  V y = term - carry;
  V t = sum + y;
  V lost = (t - sum) - y;
  // A lane whose sum is no longer finite keeps no carry: inf - inf would make it NaN where
  // the plain sum is inf (a row holding inf).
  carry = (t - t == 0) ? lost : V{};
  sum = t;
}

// kBlock running sums (lane j sums elements j, j + kBlock, ...), held in native-width
// pieces so a reduction loop keeps them in registers on every ISA. Same order as a
// Vec<T> accumulator, so results do not depend on the ISA's width. Every kFold adds the
// pieces are folded into a compensated (Kahan) running sum per lane: plain float32 lanes
// drifted 5.5e-5 relative over a 262144-long row of equal squares (3e-4 at 1048576).
template <typename T, typename Isa>
struct LaneSums {
  static constexpr int kLanes = kNativeBytes<Isa> / int(sizeof(T)) < kBlock
      ? kNativeBytes<Isa> / int(sizeof(T))
      : kBlock;
  static constexpr int kPieces = kBlock / kLanes;
  static constexpr int kFold = 16;
  typedef T Piece __attribute__((vector_size(kLanes * sizeof(T))));
  Piece piece[kPieces] = {};
  Piece folded[kPieces] = {}, carry[kPieces] = {};
  int pending = 0;

  // lanes += a * b (one FMA per piece where the ISA has FMA)
  MLXR_INLINE void add_product(Vec<T> a, Vec<T> b) {
    add_product_impl(a, b, std::make_integer_sequence<int, kPieces>{});
    fold_every_kfold();
  }
  // lanes += a
  MLXR_INLINE void add(Vec<T> a) {
    add_impl(a, std::make_integer_sequence<int, kPieces>{});
    fold_every_kfold();
  }
  // Sum of the lanes in lane order.
  MLXR_INLINE T sum() const {
    T total = 0;
    for (int p = 0; p < kPieces; ++p) {
      Piece lane_sum = (folded[p] - carry[p]) + piece[p];
      for (int j = 0; j < kLanes; ++j) {
        total += lane_sum[j];
      }
    }
    return total;
  }

 private:
  MLXR_INLINE void fold_every_kfold() {
    if (++pending == kFold) {
      pending = 0;
      for (int p = 0; p < kPieces; ++p) {
        kahan_add(folded[p], carry[p], piece[p]);
        piece[p] = Piece{};
      }
    }
  }
  template <int... P>
  MLXR_INLINE void add_product_impl(Vec<T> a, Vec<T> b, std::integer_sequence<int, P...>) {
    ((piece[P] += slice<P * kLanes, kLanes>(a) * slice<P * kLanes, kLanes>(b)), ...);
  }
  template <int... P>
  MLXR_INLINE void add_impl(Vec<T> a, std::integer_sequence<int, P...>) {
    ((piece[P] += slice<P * kLanes, kLanes>(a)), ...);
  }
};

// Block<D, Isa>: load converts kBlock storage elements to an accumulator vector, store
// rounds one back, and round(v) == load(store(v)) without the trip through memory.
template <typename D, typename Isa>
struct Block {
  using V = Vec<typename D::acc>;
  static MLXR_INLINE V load(const typename D::storage* src) {
    return load_split<kNativeBytes<Isa>, V>(src);
  }
  static MLXR_INLINE void store(V v, typename D::storage* dst) {
    store_split<kNativeBytes<Isa>>(v, dst);
  }
  static MLXR_INLINE V round(V v) {
    return v;
  }
};

// bfloat16 bits of each float lane (nearest-even, NaN -> 0x7FC0) in the low half of a u32.
// kMayBeNan = false: lanes are known not to be NaN, so the NaN fix-up is skipped.
template <bool kMayBeNan = true, typename F>
MLXR_INLINE auto bf16_round_bits(F v) {
  using U = typename Resize<VecU32, sizeof(F) / 4>::type;
  U u = U(v);
  U rounded = (u + 0x7FFFu + ((u >> 16) & 1u)) >> 16;
  if constexpr (!kMayBeNan) {
    return rounded;
  } else {
    auto is_nan = (u & 0x7FFFFFFFu) > 0x7F800000u;
    return is_nan ? broadcast<U>(0x7FC0u) : rounded;
  }
}

template <typename Isa>
struct Block<BF16, Isa> {
  using V = Vec<float>;
  static MLXR_INLINE V load(const uint16_t* src) {
    auto bits = load_split<kNativeBytes<Isa>, VecU16>(src);
    return V(__builtin_convertvector(bits, VecU32) << 16);
  }
  template <bool kMayBeNan = true>
  static MLXR_INLINE void store(V v, uint16_t* dst) {
    store_split<kNativeBytes<Isa>>(__builtin_convertvector(bf16_round_bits<kMayBeNan>(v), VecU16), dst);
  }
  template <bool kMayBeNan = true>
  static MLXR_INLINE V round(V v) {
    return V(bf16_round_bits<kMayBeNan>(v) << 16);
  }
};

template <typename Isa>
struct Block<F16, Isa> {
  using V = Vec<float>;
#if defined(__FLT16_MAX__)
  typedef _Float16 VecH __attribute__((vector_size(kBlock * 2)));
  static MLXR_INLINE V load(const uint16_t* src) {
    return __builtin_convertvector(load_split<kNativeBytes<Isa>, VecH>(src), V);
  }
  static MLXR_INLINE void store(V v, uint16_t* dst) {
    store_split<kNativeBytes<Isa>>(__builtin_convertvector(v, VecH), dst);
  }
  static MLXR_INLINE V round(V v) {
    return __builtin_convertvector(__builtin_convertvector(v, VecH), V);
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
  static MLXR_INLINE V round(V v) {
    for (int j = 0; j < kBlock; ++j) {
      v[j] = f16_to_float(float_to_f16(v[j]));
    }
    return v;
  }
#endif
};

#ifdef MLXR_X86_DISPATCH
// Compilers do not vectorise _Float16 conversions on x86: use F16C directly.
template <>
struct Block<F16, IsaAvx512> {
  using V = Vec<float>;
  static constexpr int kMode = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;
  MLXR_TARGET_AVX512 static inline V load(const uint16_t* src) {
    __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src));
    return V(_mm512_cvtph_ps(h));
  }
  MLXR_TARGET_AVX512 static inline void store(V v, uint16_t* dst) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst), _mm512_cvtps_ph(__m512(v), kMode));
  }
  MLXR_TARGET_AVX512 static inline V round(V v) {
    return V(_mm512_cvtph_ps(_mm512_cvtps_ph(__m512(v), kMode)));
  }
};

template <>
struct Block<F16, IsaAvx2> {
  using V = Vec<float>;
  static constexpr int kMode = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;
  MLXR_TARGET_AVX2 static inline V load(const uint16_t* src) {
    __m256 lo = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src)));
    __m256 hi = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + 8)));
    return V(concat(lo, hi));
  }
  MLXR_TARGET_AVX2 static inline void store(V v, uint16_t* dst) {
    __m256 lo = __m256(slice<0, 8>(v)), hi = __m256(slice<8, 8>(v));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst), _mm256_cvtps_ph(lo, kMode));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + 8), _mm256_cvtps_ph(hi, kMode));
  }
  MLXR_TARGET_AVX2 static inline V round(V v) {
    __m256 lo = _mm256_cvtph_ps(_mm256_cvtps_ph(__m256(slice<0, 8>(v)), kMode));
    __m256 hi = _mm256_cvtph_ps(_mm256_cvtps_ph(__m256(slice<8, 8>(v)), kMode));
    return V(concat(lo, hi));
  }
};

// GCC splits the generic bfloat16 widening/narrowing badly: spell out the instructions. The
// rounding uses mask registers (6 instructions where bf16_round_bits takes 10); same bits.
template <>
struct Block<BF16, IsaAvx512> {
  using V = Vec<float>;
  // bfloat16 bits of each lane in its high half (low half: garbage), nearest-even, NaN -> 0x7FC0.
  template <bool kMayBeNan>
  MLXR_TARGET_AVX512 static inline __m512i round_high(V v) {
    __m512 f = __m512(v);
    __m512i u = _mm512_castps_si512(f);
    __mmask16 odd = _mm512_test_epi32_mask(u, _mm512_set1_epi32(0x10000));
    __m512i r = _mm512_add_epi32(u, _mm512_set1_epi32(0x7FFF));
    r = _mm512_mask_add_epi32(r, odd, r, _mm512_set1_epi32(1));
    if constexpr (!kMayBeNan) {
      return r;
    }
    __mmask16 nan = _mm512_cmp_ps_mask(f, f, _CMP_UNORD_Q);
    return _mm512_mask_mov_epi32(r, nan, _mm512_set1_epi32(0x7FC00000));
  }
  MLXR_TARGET_AVX512 static inline V load(const uint16_t* src) {
    __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src));
    return V(_mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16)));
  }
  template <bool kMayBeNan = true>
  MLXR_TARGET_AVX512 static inline void store(V v, uint16_t* dst) {
    __m512i bits = _mm512_srli_epi32(round_high<kMayBeNan>(v), 16);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst), _mm512_cvtepi32_epi16(bits));
  }
  template <bool kMayBeNan = true>
  MLXR_TARGET_AVX512 static inline V round(V v) {
    __m512i high = _mm512_and_si512(round_high<kMayBeNan>(v), _mm512_set1_epi32(int(0xFFFF0000u)));
    return V(_mm512_castsi512_ps(high));
  }
};

template <>
struct Block<BF16, IsaAvx2> {
  using V = Vec<float>;
  MLXR_TARGET_AVX2 static inline __m256 widen(const uint16_t* src) {
    __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src));
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
  }
  MLXR_TARGET_AVX2 static inline V load(const uint16_t* src) {
    return V(concat(widen(src), widen(src + 8)));
  }
  template <bool kMayBeNan = true>
  MLXR_TARGET_AVX2 static inline void store(V v, uint16_t* dst) {
    __m256i lo = __m256i(bf16_round_bits<kMayBeNan>(slice<0, 8>(v)));
    __m256i hi = __m256i(bf16_round_bits<kMayBeNan>(slice<8, 8>(v)));
    // packus works per 128-bit lane: reorder the quarters back into element order.
    __m256i packed = _mm256_permute4x64_epi64(_mm256_packus_epi32(lo, hi), 0xD8);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst), packed);
  }
  template <bool kMayBeNan = true>
  MLXR_TARGET_AVX2 static inline V round(V v) {
    auto lo = bf16_round_bits<kMayBeNan>(slice<0, 8>(v)) << 16;
    auto hi = bf16_round_bits<kMayBeNan>(slice<8, 8>(v)) << 16;
    return V(concat(lo, hi));
  }
};
#endif

// round / store of values known not to be NaN (infinities allowed). bfloat16 then skips its NaN
// fix-up, ~30 % of a bfloat16 norm's instructions; the bits are those of round / store. Rows
// with finite statistics and finite parameters cannot produce NaN, so the norms use these.
template <typename D, typename Isa>
MLXR_INLINE Vec<typename D::acc> round_not_nan(Vec<typename D::acc> v) {
  if constexpr (std::is_same_v<D, BF16>) {
    return Block<D, Isa>::template round<false>(v);
  } else {
    return Block<D, Isa>::round(v);
  }
}

template <typename D, typename Isa>
MLXR_INLINE void store_not_nan(Vec<typename D::acc> v, typename D::storage* dst) {
  if constexpr (std::is_same_v<D, BF16>) {
    Block<D, Isa>::template store<false>(v, dst);
  } else {
    Block<D, Isa>::store(v, dst);
  }
}

} // namespace mlxr::cpu
