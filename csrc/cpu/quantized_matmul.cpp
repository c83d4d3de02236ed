#include "cpu/quantized_matmul.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <type_traits>
#include <vector>

#include "cpu/block.h"
#include "cpu/isa.h"
#include "cpu/thread_pool.h"

namespace mlxr::cpu {

namespace {

using V = Vec<float>;
using VecI32 = Vec<int32_t>;
typedef uint8_t VecU8 __attribute__((vector_size(kBlock)));

// Codes are handled in chunks of 32 along the packed axis (group sizes are multiples of 32).
constexpr int kChunk = 32;

// One chunk of 32 codes as two float vectors. 8 bits: codes 0-15 and 16-31 in order.
// 4 bits: byte j holds codes 2j (low nibble) and 2j+1 (high nibble), so masking and shifting
// whole bytes yields the even codes and the odd codes; callers permute x to match.
template <typename Isa, int Bits>
struct Unpack {
  static MLXR_INLINE void run(const uint8_t* p, V& first, V& second) {
    if constexpr (Bits == 8) {
      first = __builtin_convertvector(__builtin_convertvector(load_vec<VecU8>(p), VecI32), V);
      second = __builtin_convertvector(__builtin_convertvector(load_vec<VecU8>(p + 16), VecI32), V);
    } else {
      VecI32 bytes = __builtin_convertvector(load_vec<VecU8>(p), VecI32);
      first = __builtin_convertvector(bytes & 15, V);
      second = __builtin_convertvector(bytes >> 4, V);
    }
  }
};

#ifdef MLXR_X86_DISPATCH
// GCC scalarises the generic byte -> int32 vector conversion; zero-extend with vpmovzxbd.
template <int Bits>
struct Unpack<IsaAvx512, Bits> {
  MLXR_TARGET_AVX512 static inline __m512i widen(const uint8_t* p) {
    return _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  }
  MLXR_TARGET_AVX512 static inline void run(const uint8_t* p, V& first, V& second) {
    if constexpr (Bits == 8) {
      first = V(_mm512_cvtepi32_ps(widen(p)));
      second = V(_mm512_cvtepi32_ps(widen(p + 16)));
    } else {
      __m512i bytes = widen(p);
      first = V(_mm512_cvtepi32_ps(_mm512_and_si512(bytes, _mm512_set1_epi32(15))));
      second = V(_mm512_cvtepi32_ps(_mm512_srli_epi32(bytes, 4)));
    }
  }
};

template <int Bits>
struct Unpack<IsaAvx2, Bits> {
  MLXR_TARGET_AVX2 static inline __m256 widen8(const uint8_t* p, int shift, int mask) {
    __m256i v = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
    v = _mm256_and_si256(_mm256_srli_epi32(v, shift), _mm256_set1_epi32(mask));
    return _mm256_cvtepi32_ps(v);
  }
  MLXR_TARGET_AVX2 static inline V join(__m256 lo, __m256 hi) {
    V v;
    std::memcpy(&v, &lo, 32);
    std::memcpy(reinterpret_cast<char*>(&v) + 32, &hi, 32);
    return v;
  }
  MLXR_TARGET_AVX2 static inline void run(const uint8_t* p, V& first, V& second) {
    if constexpr (Bits == 8) {
      first = join(widen8(p, 0, 255), widen8(p + 8, 0, 255));
      second = join(widen8(p + 16, 0, 255), widen8(p + 24, 0, 255));
    } else {
      first = join(widen8(p, 0, 15), widen8(p + 8, 0, 15));
      second = join(widen8(p, 4, 15), widen8(p + 8, 4, 15));
    }
  }
};
#endif

template <typename Isa, int Bits>
MLXR_INLINE void unpack_chunk(const uint8_t* p, V& first, V& second) {
  Unpack<Isa, Bits>::run(p, first, second);
}

#ifdef MLXR_X86_DISPATCH
// One chunk of 32 4-bit codes dequantised by table lookup: table[q] = s * q + b for the 16
// codes, vpermps reads each lane's low 4 bits (no mask), same lane order as unpack_chunk.
MLXR_TARGET_AVX512 inline void lookup_chunk4(const uint8_t* p, __m512 table, V& first, V& second) {
  __m512i bytes = Unpack<IsaAvx512, 4>::widen(p);
  first = V(_mm512_permutexvar_ps(bytes, table));
  second = V(_mm512_permutexvar_ps(_mm512_srli_epi32(bytes, 4), table));
}
#endif

// Position in the chunk of lane i of unpack_chunk's first (half 0) or second (half 1) vector.
template <int Bits>
constexpr int chunk_position(int half, int i) {
  return Bits == 4 ? 2 * i + half : 16 * half + i;
}

// The same chunk dequantised (s * q + b) in natural order.
template <typename Isa, int Bits>
MLXR_INLINE void dequant_chunk_in_order(const uint8_t* p, float s, float b, V& lo, V& hi) {
  V first, second;
  unpack_chunk<Isa, Bits>(p, first, second);
  first = first * s + b;
  second = second * s + b;
  if constexpr (Bits == 4) {
    lo = __builtin_shufflevector(first, second, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    hi = __builtin_shufflevector(first, second, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
  } else {
    lo = first;
    hi = second;
  }
}

// Blocks of kBlock elements through the ISA's vector conversions (float16: vcvtph2ps on 16
// lanes; GCC leaves the scalar loop scalar), the rest one by one.
template <typename D, typename Isa>
MLXR_INLINE void to_float32_impl(const typename D::storage* src, int64_t step, float* dst, int64_t n) {
  int64_t i = 0;
  if (step == 1) {
    for (; i + kBlock <= n; i += kBlock) {
      store_vec(Block<D, Isa>::load(src + i), dst + i);
    }
  }
  for (; i < n; ++i) {
    dst[i] = D::load(src[i * step]);
  }
}

template <typename D, typename Isa>
MLXR_INLINE void from_float32_impl(const float* src, typename D::storage* dst, int64_t n) {
  int64_t i = 0;
  for (; i + kBlock <= n; i += kBlock) {
    Block<D, Isa>::store(load_vec<typename Block<D, Isa>::V>(src + i), dst + i);
  }
  for (; i < n; ++i) {
    dst[i] = D::store(src[i]);
  }
}

template <typename D>
MLXR_INLINE float load_param(const void* p, int64_t i) {
  return D::load(static_cast<const typename D::storage*>(p)[i]);
}

// ---------------------------------------------------------------- GEMV, out = x @ w_hat.T
// Per group, sum(x * (s*q + b)) = s * sum(x*q) + b * sum(x): the inner loop is pure
// unpack + FMA, and sum(x) per group is computed once per call.

struct GemvPlan {
  const QuantizedMatmulArgs* args;
  const float* x;     // M x K; for 4-bit transpose=True permuted as run_gemv says
  const float* x_sum; // M x (K / group_size), transpose=True without register table only
  int64_t block;      // output columns per task
  bool x_blocks64 = false; // x permuted for gemv_t_table64, which then takes every row block
};

// acc[m][j] += x[m, k : k + 32] . (first, second) for the M rows of x (x in chunk order).
template <int M, int NB>
MLXR_INLINE void fma_chunk(V (&acc)[M][NB], int j, const float* x, int64_t K, int64_t k, V first, V second) {
#pragma GCC unroll 8
  for (int m = 0; m < M; ++m) {
    acc[m][j] += load_vec<V>(x + m * K + k) * first;
    acc[m][j] += load_vec<V>(x + m * K + k + 16) * second;
  }
}

// AVX-512, 4 bits, at most 2 rows of x: codes are dequantised by register-table lookup.
template <typename Isa, int Bits, int M>
constexpr bool kRegisterTable = Bits == 4 && M <= 2 && std::is_same_v<Isa, IsaAvx512>;

#ifdef MLXR_X86_DISPATCH
// The next NB weight rows, one cache line per row: NB interleaved streams that each end after
// a row (2 KB at K = 4096) leave the hardware prefetcher behind (a decode from DRAM: 25 %).
template <int NB>
MLXR_TARGET_AVX512 inline void prefetch_next_rows(const uint8_t* row0, int64_t row_bytes, int64_t offset) {
#pragma GCC unroll 8
  for (int j = 0; j < NB; ++j) {
    _mm_prefetch(reinterpret_cast<const char*>(row0 + (NB + j) * row_bytes + offset), _MM_HINT_T0);
  }
}

// Group g's 16 possible w_hat = s * q + b of each of NB weight rows, one register each.
template <typename D, int NB>
MLXR_TARGET_AVX512 inline void group_tables(const QuantizedMatmulArgs& a, int64_t groups, int64_t n0,
                                            int64_t g, __m512 (&table)[NB]) {
  const V iota = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
#pragma GCC unroll 8
  for (int j = 0; j < NB; ++j) {
    table[j] = __m512(iota * load_param<D>(a.scales, (n0 + j) * groups + g) +
                      load_param<D>(a.biases, (n0 + j) * groups + g));
  }
}

// Register-table decode for group sizes that are multiples of 64: 64 codes (32 bytes) widened
// word -> dword give one index vector per nibble t, lane i holding code 4i + t of one group,
// so 64 codes cost 1 widen + 3 shifts + 4 lookups (the 32-code chunks: 2 widens + 2 shifts).
// x comes permuted to match (run_gemv). Products and table as in gemv_t_rows.
template <typename D, int M, int NB>
MLXR_TARGET_AVX512 inline void gemv_t_table64(const GemvPlan& p, int64_t n0) {
  const QuantizedMatmulArgs& a = *p.args;
  const int64_t K = a.K, gs = a.group_size, groups = K / gs, row_bytes = K / 2;
  const uint8_t* w = reinterpret_cast<const uint8_t*>(a.w) + n0 * row_bytes;
  // One x row gives each weight row one FMA chain: alternate two to hide the FMA latency.
  constexpr int kChains = M == 1 ? 2 : 1;
  V acc[kChains][M][NB] = {};
  for (int64_t g = 0; g < groups; ++g) {
    __m512 table[NB];
    group_tables<D, NB>(a, groups, n0, g, table);
    for (int64_t k = g * gs; k < (g + 1) * gs; k += 64) {
      if (k % 128 == 0) {
        prefetch_next_rows<NB>(w, row_bytes, k / 2);
      }
      __m512i codes[NB];
#pragma GCC unroll 8
      for (int j = 0; j < NB; ++j) {
        codes[j] = _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + j * row_bytes + k / 2)));
      }
#pragma GCC unroll 4
      for (int t = 0; t < 4; ++t) {
        V xt[M];
#pragma GCC unroll 8
        for (int m = 0; m < M; ++m) {
          xt[m] = load_vec<V>(p.x + m * K + k + 16 * t);
        }
#pragma GCC unroll 8
        for (int j = 0; j < NB; ++j) {
          // vpermps reads each lane's low 4 bits: code t needs no mask.
          __m512i index = t == 0 ? codes[j] : _mm512_srli_epi32(codes[j], 4 * t);
          V w_hat = V(_mm512_permutexvar_ps(index, table[j]));
#pragma GCC unroll 8
          for (int m = 0; m < M; ++m) {
            acc[t % kChains][m][j] += xt[m] * w_hat;
          }
        }
      }
    }
  }
#pragma GCC unroll 8
  for (int m = 0; m < M; ++m) {
#pragma GCC unroll 8
    for (int j = 0; j < NB; ++j) {
      V sum = acc[0][m][j];
      if constexpr (kChains == 2) {
        sum += acc[1][m][j];
      }
      a.out[m * a.N + n0 + j] = reduce_sum(sum);
    }
  }
}
#endif

template <typename D, typename Isa, int Bits, int M, int NB>
MLXR_INLINE void gemv_t_rows(const GemvPlan& p, int64_t n0) {
  const QuantizedMatmulArgs& a = *p.args;
  const int64_t K = a.K, gs = a.group_size, groups = K / gs;
  const int64_t row_bytes = K * Bits / 8;
  const uint8_t* rows[NB];
#pragma GCC unroll 8
  for (int j = 0; j < NB; ++j) {
    rows[j] = reinterpret_cast<const uint8_t*>(a.w) + (n0 + j) * row_bytes;
  }
  // Few x rows: scale each group's sum(x*q) (one FMA per row and group). More rows: scale
  // the unpacked codes instead (two multiplies shared by all rows), which needs no per-group
  // accumulators and so leaves registers for more weight rows per pass.
  constexpr bool kScaleCodes = M >= 3;
  V total[M][NB] = {};
#ifdef MLXR_X86_DISPATCH
  if constexpr (kRegisterTable<Isa, Bits, M>) {
    // AVX-512, 4 bits, few rows: each group's 16 possible w_hat values as a register table,
    // so a code costs a lookup and an FMA with no per-group scaling or bias step, and
    // x * w_hat is formed as the reference forms it.
    for (int64_t g = 0; g < groups; ++g) {
      __m512 table[NB];
      group_tables<D, NB>(a, groups, n0, g, table);
      for (int64_t k = g * gs; k < (g + 1) * gs; k += kChunk) {
        if (k % 128 == 0) {
          prefetch_next_rows<NB>(rows[0], row_bytes, k / 2);
        }
#pragma GCC unroll 8
        for (int j = 0; j < NB; ++j) {
          V wa, wb;
          lookup_chunk4(rows[j] + k / 2, table[j], wa, wb);
          fma_chunk<M, NB>(total, j, p.x, K, k, wa, wb);
        }
      }
    }
#pragma GCC unroll 8
    for (int m = 0; m < M; ++m) {
#pragma GCC unroll 8
      for (int j = 0; j < NB; ++j) {
        a.out[m * a.N + n0 + j] = reduce_sum(total[m][j]);
      }
    }
    return;
  }
#endif
  float bias_part[M][NB] = {};
  for (int64_t g = 0; g < groups; ++g) {
    float s[NB], b[NB];
#pragma GCC unroll 8
    for (int j = 0; j < NB; ++j) {
      s[j] = load_param<D>(a.scales, (n0 + j) * groups + g);
      b[j] = load_param<D>(a.biases, (n0 + j) * groups + g);
    }
    if constexpr (kScaleCodes) {
      for (int64_t k = g * gs; k < (g + 1) * gs; k += kChunk) {
#pragma GCC unroll 8
        for (int j = 0; j < NB; ++j) {
          V qa, qb;
          unpack_chunk<Isa, Bits>(rows[j] + k * Bits / 8, qa, qb);
          fma_chunk<M, NB>(total, j, p.x, K, k, qa * s[j], qb * s[j]);
        }
      }
    } else {
      // One accumulator per (row, column): M * NB chains already hide the FMA latency.
      V acc[M][NB] = {};
      for (int64_t k = g * gs; k < (g + 1) * gs; k += kChunk) {
#pragma GCC unroll 8
        for (int j = 0; j < NB; ++j) {
          V qa, qb;
          unpack_chunk<Isa, Bits>(rows[j] + k * Bits / 8, qa, qb);
          fma_chunk<M, NB>(acc, j, p.x, K, k, qa, qb);
        }
      }
#pragma GCC unroll 8
      for (int j = 0; j < NB; ++j) {
#pragma GCC unroll 8
        for (int m = 0; m < M; ++m) {
          total[m][j] += s[j] * acc[m][j];
        }
      }
    }
#pragma GCC unroll 8
    for (int j = 0; j < NB; ++j) {
#pragma GCC unroll 8
      for (int m = 0; m < M; ++m) {
        bias_part[m][j] += b[j] * p.x_sum[m * groups + g];
      }
    }
  }
#pragma GCC unroll 8
  for (int m = 0; m < M; ++m) {
#pragma GCC unroll 8
    for (int j = 0; j < NB; ++j) {
      a.out[m * a.N + n0 + j] = reduce_sum(total[m][j]) + bias_part[m][j];
    }
  }
}

template <typename D, typename Isa, int Bits, int M>
MLXR_INLINE void gemv_t_block(const GemvPlan& p, int64_t begin, int64_t end) {
  // Several weight rows per pass share each x load: as many as 16-ish accumulators allow.
  // The register table takes 4: fewer live registers, 10 % faster than 8 on a 4096 x 4096 decode.
  constexpr bool kTable = kRegisterTable<Isa, Bits, M>;
  constexpr int NB = kTable ? 4 : (M == 1 ? 8 : (M <= 4 ? 4 : 2));
  int64_t n = begin;
#ifdef MLXR_X86_DISPATCH
  if constexpr (kTable) {
    if (p.x_blocks64) {
      for (; n + NB <= end; n += NB) {
        gemv_t_table64<D, M, NB>(p, n);
      }
      for (; n < end; ++n) {
        gemv_t_table64<D, M, 1>(p, n);
      }
      return;
    }
  }
#endif
  for (; n + NB <= end; n += NB) {
    gemv_t_rows<D, Isa, Bits, M, NB>(p, n);
  }
  for (; n < end; ++n) {
    gemv_t_rows<D, Isa, Bits, M, 1>(p, n);
  }
}

// Up to this many rows the GEMV path beats dequantise-and-GEMM: single-thread CPU time on
// 4096x4096 4-bit (Zen 4): GEMV 6.5/12.9/18.8 ms at M=8/16/24, GEMM 13.8/14.2/15 ms.
constexpr int64_t kDefaultGemvMaxRows = 16;

// Rows of x in blocks of kGemvRows; the task's slice of w stays in L2 across blocks.
constexpr int64_t kGemvRows = 8;

// The plan for rows [m0, m0 + rows) of x and out.
MLXR_INLINE GemvPlan row_block(const GemvPlan& p, QuantizedMatmulArgs& block_args, int64_t m0) {
  const QuantizedMatmulArgs& a = *p.args;
  block_args = a;
  block_args.M = std::min(kGemvRows, a.M - m0);
  block_args.out = a.out + m0 * a.N;
  const float* x_sum = p.x_sum ? p.x_sum + m0 * (a.K / a.group_size) : nullptr;
  return GemvPlan{&block_args, p.x + m0 * a.K, x_sum, p.block, p.x_blocks64};
}

// ---------------------------------------------------------------- GEMV, out = x @ w_hat
// w_hat is K x N with groups along N: a tile of CT chunks of 32 columns walks all K rows,
// FMA-ing (x[k] * s) * q into column accumulators; sum_k x[k] * b is a scalar per chunk.

template <typename D, typename Isa, int Bits, int M, int CT>
MLXR_INLINE void gemv_n_tile(const GemvPlan& p, int64_t n0) {
  const QuantizedMatmulArgs& a = *p.args;
  const int64_t K = a.K, N = a.N, groups = N / a.group_size;
  const int64_t row_bytes = N * Bits / 8;
  constexpr int kChunkBytes = kChunk * Bits / 8;
  const uint8_t* base = reinterpret_cast<const uint8_t*>(a.w) + n0 * Bits / 8;
  int64_t group[CT];
#pragma GCC unroll 8
  for (int c = 0; c < CT; ++c) {
    group[c] = (n0 + c * kChunk) / a.group_size;
  }
  V acc_a[M][CT] = {};
  V acc_b[M][CT] = {};
  float bias_part[M][CT] = {};
  for (int64_t k = 0; k < K; ++k) {
    const uint8_t* row = base + k * row_bytes;
    // Rows are far apart: fetch ahead, the hardware prefetcher does not follow large strides.
    __builtin_prefetch(row + 8 * row_bytes);
    float xk[M];
#pragma GCC unroll 8
    for (int m = 0; m < M; ++m) {
      xk[m] = p.x[m * K + k];
    }
#pragma GCC unroll 8
    for (int c = 0; c < CT; ++c) {
      float s = load_param<D>(a.scales, k * groups + group[c]);
      float b = load_param<D>(a.biases, k * groups + group[c]);
      V qa, qb;
      unpack_chunk<Isa, Bits>(row + c * kChunkBytes, qa, qb);
#pragma GCC unroll 8
      for (int m = 0; m < M; ++m) {
        float xs = xk[m] * s;
        acc_a[m][c] += xs * qa;
        acc_b[m][c] += xs * qb;
        bias_part[m][c] += xk[m] * b;
      }
    }
  }
#pragma GCC unroll 8
  for (int m = 0; m < M; ++m) {
    for (int c = 0; c < CT; ++c) {
      float* dst = a.out + m * N + n0 + c * kChunk;
      for (int i = 0; i < 16; ++i) {
        dst[chunk_position<Bits>(0, i)] = acc_a[m][c][i] + bias_part[m][c];
        dst[chunk_position<Bits>(1, i)] = acc_b[m][c][i] + bias_part[m][c];
      }
    }
  }
}

template <typename D, typename Isa, int Bits, int M>
MLXR_INLINE void gemv_n_block(const GemvPlan& p, int64_t begin, int64_t end) {
  // Enough column chunks for independent FMA chains when few x rows provide them.
  constexpr int CT = M == 1 ? 4 : (M <= 4 ? 2 : 1);
  int64_t n = begin;
  for (; n + CT * kChunk <= end; n += CT * kChunk) {
    gemv_n_tile<D, Isa, Bits, M, CT>(p, n);
  }
  for (; n < end; n += kChunk) {
    gemv_n_tile<D, Isa, Bits, M, 1>(p, n);
  }
}

// One row block: the M template argument (1..8 rows) picks the register tiles.
template <typename D, typename Isa, int Bits, bool Transposed>
MLXR_INLINE void gemv_bits(const GemvPlan& p, int64_t begin, int64_t end) {
  auto block = [&](auto rows) {
    constexpr int M = decltype(rows)::value;
    if constexpr (Transposed) {
      gemv_t_block<D, Isa, Bits, M>(p, begin, end);
    } else {
      gemv_n_block<D, Isa, Bits, M>(p, begin, end);
    }
  };
  switch (p.args->M) {
    case 1: return block(std::integral_constant<int, 1>{});
    case 2: return block(std::integral_constant<int, 2>{});
    case 3: return block(std::integral_constant<int, 3>{});
    case 4: return block(std::integral_constant<int, 4>{});
    case 5: return block(std::integral_constant<int, 5>{});
    case 6: return block(std::integral_constant<int, 6>{});
    case 7: return block(std::integral_constant<int, 7>{});
    default: return block(std::integral_constant<int, 8>{});
  }
}

// A call whose rows the AVX-512 register table decodes (kRegisterTable's bits and rows, and
// transpose=True) when that is the ISA.
inline bool register_table_shape(const QuantizedMatmulArgs& a) {
  return a.transpose && a.bits == 4 && a.M <= 2;
}

// A task's columns [begin, end) for every block of kGemvRows rows of x.
template <typename D, typename Isa>
MLXR_INLINE void gemv_task_impl(const GemvPlan* p, int task) {
  int64_t begin = task * p->block;
  int64_t end = std::min(p->args->N, begin + p->block);
  const QuantizedMatmulArgs& a = *p->args;
  if constexpr (!std::is_same_v<D, F32> && std::is_same_v<Isa, IsaAvx512>) {
    if (register_table_shape(a)) {
      // The register-table decode builds each group's table from a scale and a bias per row:
      // this task's float16/bfloat16 parameters converted once make those two broadcast loads
      // instead of two loads and conversions (a third of the instructions per group).
      const int64_t groups = a.K / a.group_size, count = (end - begin) * groups;
      static thread_local std::vector<float> params;
      params.resize(2 * count);
      using S = typename D::storage;
      to_float32_impl<D, Isa>(static_cast<const S*>(a.scales) + begin * groups, 1, params.data(), count);
      to_float32_impl<D, Isa>(static_cast<const S*>(a.biases) + begin * groups, 1, params.data() + count, count);
      QuantizedMatmulArgs task_args = a;  // rows [begin, end) renumbered from 0
      task_args.w = a.w + begin * (a.K / 8);
      task_args.scales = params.data();
      task_args.biases = params.data() + count;
      task_args.out = a.out + begin;
      GemvPlan plan{&task_args, p->x, p->x_sum, p->block, p->x_blocks64};
      return gemv_bits<F32, Isa, 4, true>(plan, 0, end - begin);
    }
  }
  for (int64_t m0 = 0; m0 < p->args->M; m0 += kGemvRows) {
    QuantizedMatmulArgs block_args;
    GemvPlan plan = row_block(*p, block_args, m0);
    const bool t = p->args->transpose;
    if (p->args->bits == 4) {
      t ? gemv_bits<D, Isa, 4, true>(plan, begin, end) : gemv_bits<D, Isa, 4, false>(plan, begin, end);
    } else {
      t ? gemv_bits<D, Isa, 8, true>(plan, begin, end) : gemv_bits<D, Isa, 8, false>(plan, begin, end);
    }
  }
}

MLXR_ISA_DISPATCH(gemv_task, gemv_task_impl)

// ---------------------------------------------------------------- GEMM
// Register tiles of MR broadcast rows x 32 vector lanes over K-panels of kGemmKC; every
// quantized code is dequantised once per call, never per row of x.
// transpose=False: w_hat rows run along N, so a task dequantises its [k][32 columns] panel
//   and x rows are the broadcast operand.
// transpose=True: w_hat rows run along K, so roles swap: x is packed once as [k][32 rows]
//   panels (the vector operand), MR rows of w_hat are dequantised in order and broadcast, and
//   the tile is stored transposed. Neither layout transposes dequantised weights.

constexpr int kNR = 32;
constexpr int64_t kGemmKC = 256;
constexpr int64_t kGemmNC = 256;

struct GemmPlan {
  const QuantizedMatmulArgs* args;
  const float* x_packed; // transpose=True: per K-panel, per block of 32 rows, [k][32]
  int64_t m_padded;      // M rounded up to 32
};

template <typename D, typename Isa, int Bits>
MLXR_INLINE void pack_panel_n(const QuantizedMatmulArgs& a, int64_t k0, int64_t kc, int64_t n0,
                              int64_t nc, float* panel) {
  const int64_t groups = a.N / a.group_size, row_bytes = a.N * Bits / 8;
  for (int64_t kk = 0; kk < kc; ++kk) {
    int64_t k = k0 + kk;
    const uint8_t* row = reinterpret_cast<const uint8_t*>(a.w) + k * row_bytes;
    for (int64_t j = 0; j < nc; j += kNR) {
      int64_t n = n0 + j;
      float s = load_param<D>(a.scales, k * groups + n / a.group_size);
      float b = load_param<D>(a.biases, k * groups + n / a.group_size);
      V lo, hi;
      dequant_chunk_in_order<Isa, Bits>(row + n * Bits / 8, s, b, lo, hi);
      float* dst = panel + (j / kNR) * kc * kNR + kk * kNR;
      store_vec(lo, dst);
      store_vec(hi, dst + 16);
    }
  }
}

// w_hat[n0 + r, k0 : k0 + kc] for r < rows, in order, into rows of length kc.
template <typename D, typename Isa, int Bits>
MLXR_INLINE void dequant_rows_t(const QuantizedMatmulArgs& a, int64_t k0, int64_t kc, int64_t n0,
                                int rows, float* dst) {
  const int64_t groups = a.K / a.group_size, row_bytes = a.K * Bits / 8;
  for (int r = 0; r < rows; ++r) {
    const uint8_t* row = reinterpret_cast<const uint8_t*>(a.w) + (n0 + r) * row_bytes;
    for (int64_t kk = 0; kk < kc; kk += kChunk) {
      int64_t k = k0 + kk;
      float s = load_param<D>(a.scales, (n0 + r) * groups + k / a.group_size);
      float b = load_param<D>(a.biases, (n0 + r) * groups + k / a.group_size);
      V lo, hi;
      dequant_chunk_in_order<Isa, Bits>(row + k * Bits / 8, s, b, lo, hi);
      store_vec(lo, dst + r * kc + kk);
      store_vec(hi, dst + r * kc + kk + 16);
    }
  }
}

// C (+)= A[rows, kc] @ panel[kc, 32] with A broadcast from rows of stride lda. C is
// C[r][i] at c[r * ldc + i], or c[i * ldc + r] when TransposedC; only `cols` lanes are stored.
template <int MR, bool TransposedC>
MLXR_INLINE void gemm_tile(const float* A, int64_t lda, const float* panel, int64_t kc, float* c,
                           int64_t ldc, bool first, int cols) {
  V acc[MR][2] = {};
  for (int64_t kk = 0; kk < kc; ++kk) {
    V b0 = load_vec<V>(panel + kk * kNR);
    V b1 = load_vec<V>(panel + kk * kNR + 16);
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      V ar = broadcast<V>(A[r * lda + kk]);
      acc[r][0] += ar * b0;
      acc[r][1] += ar * b1;
    }
  }
  if constexpr (TransposedC) {
    float tile[MR][kNR];
    std::memcpy(tile, acc, sizeof(tile));
    for (int i = 0; i < cols; ++i) {
      float* dst = c + i * ldc;
#pragma GCC unroll 8
      for (int r = 0; r < MR; ++r) {
        dst[r] = first ? tile[r][i] : dst[r] + tile[r][i];
      }
    }
  } else {
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      float* dst = c + r * ldc;
      if (cols == kNR) {
        if (!first) {
          acc[r][0] += load_vec<V>(dst);
          acc[r][1] += load_vec<V>(dst + 16);
        }
        store_vec(acc[r][0], dst);
        store_vec(acc[r][1], dst + 16);
      } else {
        for (int i = 0; i < cols; ++i) {
          float v = i < 16 ? acc[r][0][i] : acc[r][1][i - 16];
          dst[i] = first ? v : dst[i] + v;
        }
      }
    }
  }
}

// Tail tiles with fewer than MR broadcast rows.
template <int MR, bool TransposedC>
MLXR_INLINE void gemm_rows(const float* A, int64_t lda, const float* panel, int64_t kc, float* c,
                           int64_t ldc, bool first, int rows, int cols) {
  if (rows == MR) {
    return gemm_tile<MR, TransposedC>(A, lda, panel, kc, c, ldc, first, cols);
  }
  if constexpr (MR > 1) {
    return gemm_rows<MR - 1, TransposedC>(A, lda, panel, kc, c, ldc, first, rows, cols);
  }
}

template <typename Isa>
constexpr int gemm_mr() {
  // 12 accumulators fit AVX-512's 32 registers; AVX2 has 16 (two per 16-float vector).
  return std::is_same_v<Isa, IsaAvx512> ? 6 : 3;
}

template <typename D, typename Isa, int Bits>
MLXR_INLINE void gemm_n_task(const QuantizedMatmulArgs& a, int task) {
  constexpr int MR = gemm_mr<Isa>();
  static thread_local std::vector<float> panel_buffer;
  const int64_t n0 = task * kGemmNC;
  const int64_t nc = std::min(kGemmNC, a.N - n0); // a multiple of 32: N is one of group_size
  panel_buffer.resize(kGemmKC * nc);
  float* panel = panel_buffer.data();
  for (int64_t k0 = 0; k0 < a.K; k0 += kGemmKC) {
    const int64_t kc = std::min(kGemmKC, a.K - k0);
    pack_panel_n<D, Isa, Bits>(a, k0, kc, n0, nc, panel);
    for (int64_t m0 = 0; m0 < a.M; m0 += MR) {
      int rows = static_cast<int>(std::min<int64_t>(MR, a.M - m0));
      for (int64_t j = 0; j < nc; j += kNR) {
        gemm_rows<MR, false>(a.x + m0 * a.K + k0, a.K, panel + (j / kNR) * kc * kNR, kc,
                             a.out + m0 * a.N + n0 + j, a.N, k0 == 0, rows, kNR);
      }
    }
  }
}

template <typename D, typename Isa, int Bits>
MLXR_INLINE void gemm_t_task(const GemmPlan& p, int task) {
  constexpr int MR = gemm_mr<Isa>();
  const QuantizedMatmulArgs& a = *p.args;
  float w_rows[MR * kGemmKC];
  const int64_t n0 = task * kGemmNC;
  const int64_t n_end = std::min(a.N, n0 + kGemmNC);
  for (int64_t k0 = 0; k0 < a.K; k0 += kGemmKC) {
    const int64_t kc = std::min(kGemmKC, a.K - k0);
    const float* x_panel = p.x_packed + k0 * p.m_padded;
    for (int64_t n = n0; n < n_end; n += MR) {
      int rows = static_cast<int>(std::min<int64_t>(MR, n_end - n));
      dequant_rows_t<D, Isa, Bits>(a, k0, kc, n, rows, w_rows);
      for (int64_t m0 = 0; m0 < a.M; m0 += kNR) {
        int cols = static_cast<int>(std::min<int64_t>(kNR, a.M - m0));
        gemm_rows<MR, true>(w_rows, kc, x_panel + m0 * kc, kc, a.out + m0 * a.N + n, a.N,
                            k0 == 0, rows, cols);
      }
    }
  }
}

template <typename D, typename Isa>
MLXR_INLINE void gemm_task_impl(const GemmPlan* p, int task) {
  const QuantizedMatmulArgs& a = *p->args;
  if (a.transpose) {
    return a.bits == 4 ? gemm_t_task<D, Isa, 4>(*p, task) : gemm_t_task<D, Isa, 8>(*p, task);
  }
  return a.bits == 4 ? gemm_n_task<D, Isa, 4>(a, task) : gemm_n_task<D, Isa, 8>(a, task);
}

MLXR_ISA_DISPATCH(gemm_task, gemm_task_impl)

int64_t ceil_div(int64_t a, int64_t b) {
  return (a + b - 1) / b;
}

// Whether every row block of this GEMV call takes the AVX-512 register table (kRegisterTable:
// the ISA is the one MLXR_ISA_DISPATCH picks).
bool register_table_call(const QuantizedMatmulArgs& a) {
  return register_table_shape(a) && active_isa() == Isa::avx512;
}

template <typename D>
void run_gemv(const QuantizedMatmulArgs& a) {
  GemvPlan plan{&a, a.x, nullptr, 0};
  std::vector<float> permuted, x_sum;
  if (a.transpose) {
    const bool table = register_table_call(a);
    // x in the lane order the codes unpack in, permuted once: 64-code blocks for
    // gemv_t_table64 (lane i of vector t is code 4i + t), else even/odd lanes per chunk.
    if (a.bits == 4) {
      permuted.resize(a.M * a.K);
      plan.x_blocks64 = table && a.group_size % 64 == 0;
      if (plan.x_blocks64) {
        for (int64_t i = 0; i < a.M * a.K; i += 64) {
          for (int t = 0; t < 4; ++t) {
            for (int j = 0; j < 16; ++j) {
              permuted[i + 16 * t + j] = a.x[i + 4 * j + t];
            }
          }
        }
      } else {
        for (int64_t i = 0; i < a.M * a.K; i += kChunk) {
          for (int j = 0; j < 16; ++j) {
            permuted[i + j] = a.x[i + 2 * j];
            permuted[i + 16 + j] = a.x[i + 2 * j + 1];
          }
        }
      }
      plan.x = permuted.data();
    }
    // The register table adds each x * w_hat directly: no b * sum(x) term.
    if (!table) {
      const int64_t groups = a.K / a.group_size;
      x_sum.assign(a.M * groups, 0.0f);
      for (int64_t m = 0; m < a.M; ++m) {
        for (int64_t k = 0; k < a.K; ++k) {
          x_sum[m * groups + k / a.group_size] += a.x[m * a.K + k];
        }
      }
      plan.x_sum = x_sum.data();
    }
    // Tasks of 64 rows: fine enough to balance two busy cores, coarse enough to stay cheap.
    plan.block = 64;
    parallel_for(static_cast<int>(ceil_div(a.N, plan.block)),
                 [&](int t) { gemv_task<D>(&plan, t); });
  } else {
    plan.block = 4 * kChunk;
    parallel_for(static_cast<int>(ceil_div(a.N, plan.block)),
                 [&](int t) { gemv_task<D>(&plan, t); });
  }
}

// True when every |x| < 2^100: then no group's sum(x*q) (at most 255 * 128 * |x|) or sum(x)
// can overflow where x * w_hat does not. NaN fails the comparison too.
bool factorable(const float* x, int64_t n) {
  bool ok = true;
  for (int64_t i = 0; i < n; ++i) {
    ok &= std::fabs(x[i]) < 0x1p100f;
  }
  return ok;
}

} // namespace

int64_t qmm_gemv_max_rows() {
  static const int64_t rows = [] {
    const char* env = std::getenv("MLXR_QMM_GEMV_MAX_ROWS");
    return env ? std::max<int64_t>(0, std::atoll(env)) : int64_t{kDefaultGemvMaxRows};
  }();
  return rows;
}

template <typename D>
const char* quantized_matmul(const QuantizedMatmulArgs& a) {
  // Empty products are named by the path their row count selects.
  const char* by_rows = a.M <= qmm_gemv_max_rows() ? "gemv" : "gemm";
  if (a.M == 0 || a.N == 0) {
    return by_rows;
  }
  if (a.K == 0) {
    std::fill(a.out, a.out + a.M * a.N, 0.0f);
    return by_rows;
  }
  // The GEMV paths factor each group as s * sum(x*q) + b * sum(x): an infinite x_k meeting
  // q_k = 0 would give inf * 0 = NaN where x_k * w_hat_k is +-inf, and huge x could overflow
  // the factored sums, so such x takes the GEMM path, which multiplies by the dequantised
  // w_hat (x is M x K, small next to the weights: the scan is cheap).
  if (a.M <= qmm_gemv_max_rows() && factorable(a.x, a.M * a.K)) {
    run_gemv<D>(a);
    return "gemv";
  }
  GemmPlan plan{&a, nullptr, ceil_div(a.M, kNR) * kNR};
  std::vector<float> x_packed;
  if (a.transpose) {
    // x as [K-panel][block of 32 rows][k][32], zero-padded past M: shared by every task.
    x_packed.assign(a.K * plan.m_padded, 0.0f);
    for (int64_t k0 = 0; k0 < a.K; k0 += kGemmKC) {
      const int64_t kc = std::min(kGemmKC, a.K - k0);
      float* panel = x_packed.data() + k0 * plan.m_padded;
      for (int64_t m = 0; m < a.M; ++m) {
        float* dst = panel + (m / kNR) * kc * kNR + (m % kNR);
        const float* src = a.x + m * a.K + k0;
        for (int64_t kk = 0; kk < kc; ++kk) {
          dst[kk * kNR] = src[kk];
        }
      }
    }
    plan.x_packed = x_packed.data();
  }
  parallel_for(static_cast<int>(ceil_div(a.N, kGemmNC)), [&](int t) { gemm_task<D>(&plan, t); });
  return "gemm";
}

namespace {

MLXR_ISA_DISPATCH(to_float32_isa, to_float32_impl)
MLXR_ISA_DISPATCH(from_float32_isa, from_float32_impl)

} // namespace

template <typename D>
void to_float32(const typename D::storage* src, int64_t step, float* dst, int64_t n) {
  to_float32_isa<D>(src, step, dst, n);
}

template <typename D>
void from_float32(const float* src, typename D::storage* dst, int64_t n) {
  from_float32_isa<D>(src, dst, n);
}

template void to_float32<F16>(const uint16_t*, int64_t, float*, int64_t);
template void to_float32<BF16>(const uint16_t*, int64_t, float*, int64_t);
template void from_float32<F16>(const float*, uint16_t*, int64_t);
template void from_float32<BF16>(const float*, uint16_t*, int64_t);
template const char* quantized_matmul<F32>(const QuantizedMatmulArgs&);
template const char* quantized_matmul<F16>(const QuantizedMatmulArgs&);
template const char* quantized_matmul<BF16>(const QuantizedMatmulArgs&);

} // namespace mlxr::cpu
