// Type-checking stand-in for MLX's Metal device API (the Linux wheel ships no Metal headers).
// Declarations only, written from the signatures in mlx/backend/metal/device.h at MLX HEAD:
// tests/test_metal_host.py compiles csrc/metal/*.cpp against it with -fsyntax-only, so a
// misspelt call or wrong argument type in the host code shows without a Mac. Not linkable.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "mlx/array.h"
#include "mlx/device.h"
#include "mlx/stream.h"

namespace MTL {
struct Size {
  Size(size_t width, size_t height, size_t depth);
};
struct Library;
struct ComputePipelineState {
  size_t maxTotalThreadsPerThreadgroup() const;
};
} // namespace MTL

namespace mlx::core::metal {

class CommandEncoder {
 public:
  void set_input_array(const array& a, int idx, int64_t offset = 0);
  void set_output_array(array& a, int idx, int64_t offset = 0);
  void dispatch_threadgroups(MTL::Size grid_dims, MTL::Size group_dims);
  void dispatch_threads(MTL::Size grid_dims, MTL::Size group_dims);
  void set_compute_pipeline_state(MTL::ComputePipelineState* kernel);
  template <typename T>
  void set_bytes(const T* v, int n, int idx);
  template <typename T>
  void set_bytes(const T& v, int idx);
};

class Device {
 public:
  MTL::Library* get_library(const std::string& name, const std::string& path = "");
  MTL::ComputePipelineState* get_kernel(
      const std::string& base_name,
      MTL::Library* mtl_lib,
      const std::string& hash_name = "");
};

Device& device(mlx::core::Device);
CommandEncoder& get_command_encoder(Stream s);

} // namespace mlx::core::metal
