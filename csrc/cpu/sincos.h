// Sine and cosine of a float32 block, vectorised. The argument is reduced modulo pi/2 in
// float64 (exact enough for any |theta| < 2^30, i.e. any realistic RoPE position), then
// Cephes' float polynomials on [-pi/4, pi/4] give ~1 ulp results.
#pragma once

#include <cmath>
#include <cstdint>

#include "cpu/block.h"

namespace mlxr::cpu {

using VecF = Vec<float>;
using VecD = Vec<double>;
using VecI32 = Vec<int32_t>;
using VecI64 = Vec<int64_t>;

// Largest |theta| the reduction handles exactly; callers route larger or non-finite angles
// to libm.
constexpr float kSincosMaxArg = 0x1.0p30f;

MLXR_INLINE void sincos_block(VecF theta, VecF& sin_out, VecF& cos_out) {
  constexpr double kTwoOverPi = 0.636619772367581343076;
  constexpr double kPiOverTwo = 1.57079632679489661923;
  constexpr double kRoundMagic = 0x1.8p52; // adding and subtracting it rounds to an integer
  VecD t = __builtin_convertvector(theta, VecD);
  VecD k = (t * kTwoOverPi + kRoundMagic) - kRoundMagic;
  VecF r = __builtin_convertvector(t - k * kPiOverTwo, VecF);
  VecI32 quadrant = __builtin_convertvector(__builtin_convertvector(k, VecI64), VecI32);

  VecF z = r * r;
  VecF sin_r = ((-1.9515295891e-4f * z + 8.3321608736e-3f) * z - 1.6666654611e-1f) * z * r + r;
  VecF cos_r = ((2.443315711809948e-5f * z - 1.388731625493765e-3f) * z + 4.166664568298827e-2f) *
          z * z -
      0.5f * z + 1.0f;

  // sin(r + q pi/2) and cos(r + q pi/2): odd quadrants swap the two, and signs follow q.
  VecI32 swap = (quadrant & 1) != 0;
  VecF s = swap ? cos_r : sin_r;
  VecF c = swap ? sin_r : cos_r;
  VecI32 next_quadrant = quadrant + 1;
  VecU32 sin_sign = reinterpret_cast<VecU32&>(quadrant) << 30 & 0x80000000u;
  VecU32 cos_sign = reinterpret_cast<VecU32&>(next_quadrant) << 30 & 0x80000000u;
  VecU32 s_bits = reinterpret_cast<VecU32&>(s) ^ sin_sign;
  VecU32 c_bits = reinterpret_cast<VecU32&>(c) ^ cos_sign;
  sin_out = reinterpret_cast<VecF&>(s_bits);
  cos_out = reinterpret_cast<VecF&>(c_bits);
}

} // namespace mlxr::cpu
