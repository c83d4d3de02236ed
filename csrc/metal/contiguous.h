// The x the Metal row kernels read: contiguous rows. MLX's own copy (contiguous_copy_gpu) is
// not exported from libmlx, so the op builders insert this graph node on GPU streams; it shares
// the buffer when x is already row-contiguous.
#pragma once

#include "mlx/ops.h"

namespace mlxr::metal {

inline mlx::core::array contiguous_rows(const mlx::core::array& x, mlx::core::Stream stream) {
  return stream.device == mlx::core::Device::gpu ? mlx::core::contiguous(x, false, stream) : x;
}

} // namespace mlxr::metal
