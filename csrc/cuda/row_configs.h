// Kernel configurations of the CUDA row kernels (softmax, layer_norm, add_rms_norm): kGroup
// threads per row (4 to 1024) holding kItems units of kV elements in registers, or looping
// (kItems 0).
#pragma once

#include <algorithm>
#include <cstdint>

namespace mlxr::cuda {

struct RowConfig {
  const void* kernel;
  int group, items;

  // Groups of up to a warp share 256-thread blocks; a larger group is the whole block
  // (kRowBlock in kernels/reduce.cuh, which the kernels' launch bounds use).
  int block() const {
    return group > 32 ? group : 256;
  }
  unsigned grid(int64_t n_rows) const {
    int rows_per_block = block() / group;
    return static_cast<unsigned>(std::min<int64_t>((n_rows + rows_per_block - 1) / rows_per_block, int64_t(1) << 30));
  }
  // The kernel-name variant: sub-warp / warp / block / looped rows, strided for scalar element loads.
  const char* variant(bool vector) const {
    static constexpr const char* kNames[2][4] = {
        {"looped_strided_", "subwarp_strided_", "warp_strided_", "block_strided_"},
        {"looped_", "subwarp_", "warp_", "block_"},
    };
    return kNames[vector][items == 0 ? 0 : group < 32 ? 1 : group == 32 ? 2 : 3];
  }
};

// The smallest configuration that holds a row of n_units units in registers with at most 4
// units (64 bytes in flight) a thread, so no lane or register sits idle for power-of-two rows:
// sub-warp groups for short rows, a warp up to 128 units, then a block per row of up to 1024
// threads; longer rows loop. Half-empty configurations (a 256 x 8 block for 1024 units) ran
// layer_norm at 53 % of copy on the H100. Rows of up to a warp take kMinItems units a thread
// (1 or 2: more bytes in flight a thread where one unit's loads leave the SM short of them).
// Kernel<G, I> names the kernel instantiation.
template <template <int, int> class Kernel, int kMinItems = 1>
RowConfig pick_row_config(int64_t n_units) {
  static_assert(kMinItems == 1 || kMinItems == 2, "short rows take one or two units a thread");
  constexpr int k = kMinItems;
  const RowConfig configs[] = {
      {Kernel<4, k>::get(), 4, k},       {Kernel<8, k>::get(), 8, k},       {Kernel<16, k>::get(), 16, k},
      {Kernel<32, k>::get(), 32, k},     {Kernel<32, 2>::get(), 32, 2},     {Kernel<32, 4>::get(), 32, 4},
      {Kernel<64, 4>::get(), 64, 4},     {Kernel<128, 4>::get(), 128, 4},   {Kernel<256, 4>::get(), 256, 4},
      {Kernel<512, 4>::get(), 512, 4},   {Kernel<1024, 4>::get(), 1024, 4},
  };
  for (const RowConfig& c : configs) {
    if (n_units <= int64_t(c.group) * c.items) {
      return c;
    }
  }
  return {Kernel<1024, 0>::get(), 1024, 0};
}

} // namespace mlxr::cuda
