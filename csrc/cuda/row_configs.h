// Kernel configurations of the CUDA row kernels (softmax, layer_norm, add_rms_norm): kGroup
// threads per row holding kItems units of kV elements in registers, or looping (kItems 0).
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>

namespace mlxr::cuda {

struct RowConfig {
  const void* kernel;
  int group, items;

  int block() const {
    return std::max(group, 256);
  }
  unsigned grid(int64_t n_rows) const {
    int rows_per_block = block() / group;
    return static_cast<unsigned>(std::min<int64_t>((n_rows + rows_per_block - 1) / rows_per_block, int64_t(1) << 30));
  }
  // The kernel-name variant: warp / block / looped rows, strided for scalar element loads.
  std::string variant(bool vector) const {
    return std::string(items == 0 ? "looped_" : group == 32 ? "warp_" : "block_") + (vector ? "" : "strided_");
  }
};

// The smallest configuration that holds a row of n_units units in registers: a warp per row up
// to 256 units, then a block per row (4 units a thread at 1024 threads, whose registers are
// capped at 64); longer rows loop. Kernel<G, I> names the kernel instantiation.
template <template <int, int> class Kernel>
RowConfig pick_row_config(int64_t n_units) {
  const RowConfig configs[] = {
      {Kernel<32, 2>::get(), 32, 2},
      {Kernel<32, 8>::get(), 32, 8},
      {Kernel<256, 8>::get(), 256, 8},
      {Kernel<1024, 4>::get(), 1024, 4},
  };
  for (const RowConfig& c : configs) {
    if (n_units <= int64_t(c.group) * c.items) {
      return c;
    }
  }
  return {Kernel<1024, 0>::get(), 1024, 0};
}

} // namespace mlxr::cuda
