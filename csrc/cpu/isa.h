// Run-time ISA selection: each kernel is compiled for AVX-512, AVX2+F16C and a portable
// baseline, so one build runs on any x86-64 (arm64 has NEON as its baseline) yet uses
// hardware half conversion and wide vectors where the CPU has them.
#pragma once

// Kernel helpers are plain inline functions; the per-ISA entry points are `flatten`, which
// inlines the whole helper tree into them so it is compiled for that entry point's ISA.
#define MLXR_INLINE inline
#if defined(__GNUC__) || defined(__clang__)
#define MLXR_FLATTEN __attribute__((flatten))
#else
#define MLXR_FLATTEN
#endif

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define MLXR_X86_DISPATCH 1
#define MLXR_TARGET_AVX512 \
  __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c,prefer-vector-width=512")))
#define MLXR_TARGET_AVX2 __attribute__((target("avx2,fma,f16c")))
#endif

#include <type_traits>

namespace mlxr::cpu {

// f(std::bool_constant<flag>...): run-time flags as compile-time ones, one kernel
// instantiation per combination.
template <typename F>
MLXR_INLINE void with_flags(const F& f) {
  f();
}
template <typename F, typename... Flags>
MLXR_INLINE void with_flags(const F& f, bool first, Flags... rest) {
  if (first) {
    with_flags([&](auto... flags) { f(std::true_type{}, flags...); }, rest...);
  } else {
    with_flags([&](auto... flags) { f(std::false_type{}, flags...); }, rest...);
  }
}

// Compile-time ISA tags: kernels take one as a template argument to pick block conversions.
struct IsaBaseline {};
struct IsaAvx2 {};
struct IsaAvx512 {};

enum class Isa { baseline, avx2, avx512 };

// Cached CPUID answer; MLXR_CPU_ISA=baseline|avx2|avx512 caps it (for testing every path).
Isa active_isa();
const char* isa_name(Isa isa);

} // namespace mlxr::cpu

// MLXR_ISA_DISPATCH(NAME, IMPL) defines `NAME<Dtype>(args...)`, which calls the always-inline
// `IMPL<Dtype, IsaTag>(args...)` compiled for the best ISA this CPU supports.
#ifdef MLXR_X86_DISPATCH
#define MLXR_ISA_DISPATCH(NAME, IMPL)                                     \
  template <typename D, typename... A>                                    \
  MLXR_TARGET_AVX512 MLXR_FLATTEN void NAME##_avx512(A... a) {                         \
    IMPL<D, ::mlxr::cpu::IsaAvx512>(a...);                                \
  }                                                                       \
  template <typename D, typename... A>                                    \
  MLXR_TARGET_AVX2 MLXR_FLATTEN void NAME##_avx2(A... a) {                         \
    IMPL<D, ::mlxr::cpu::IsaAvx2>(a...);                                                        \
  }                                                                       \
  template <typename D, typename... A>                                    \
  MLXR_FLATTEN void NAME##_baseline(A... a) {                              \
    IMPL<D, ::mlxr::cpu::IsaBaseline>(a...);                                                        \
  }                                                                       \
  template <typename D, typename... A>                                    \
  void NAME(A... a) {                                                     \
    switch (::mlxr::cpu::active_isa()) {                                 \
      case ::mlxr::cpu::Isa::avx512:                                      \
        return NAME##_avx512<D>(a...);                                    \
      case ::mlxr::cpu::Isa::avx2:                                        \
        return NAME##_avx2<D>(a...);                                      \
      default:                                                            \
        return NAME##_baseline<D>(a...);                                  \
    }                                                                     \
  }
#else
#define MLXR_ISA_DISPATCH(NAME, IMPL) \
  template <typename D, typename... A> \
  void NAME(A... a) {                  \
    IMPL<D, ::mlxr::cpu::IsaBaseline>(a...); \
  }
#endif
