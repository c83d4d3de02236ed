#include "cpu/isa.h"

#include <cstdlib>
#include <cstring>

namespace mlxr::cpu {

static Isa detect() {
  Isa best = Isa::baseline;
#ifdef MLXR_X86_DISPATCH
  __builtin_cpu_init();
  bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
      __builtin_cpu_supports("f16c");
  bool avx512 = avx2 && __builtin_cpu_supports("avx512f") &&
      __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
      __builtin_cpu_supports("avx512dq");
  best = avx512 ? Isa::avx512 : (avx2 ? Isa::avx2 : Isa::baseline);
#endif
  if (const char* cap = std::getenv("MLXR_CPU_ISA")) {
    Isa want = std::strcmp(cap, "avx512") == 0 ? Isa::avx512
        : std::strcmp(cap, "avx2") == 0        ? Isa::avx2
                                               : Isa::baseline;
    if (want < best) {
      best = want;
    }
  }
  return best;
}

Isa active_isa() {
  static const Isa isa = detect();
  return isa;
}

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::avx512:
      return "avx512";
    case Isa::avx2:
      return "avx2";
    default:
      return "baseline";
  }
}

} // namespace mlxr::cpu
