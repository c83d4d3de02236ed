#include "metal/encode.h"

#include <dlfcn.h>

#include <filesystem>
#include <stdexcept>

#include "mlx/allocator.h"
#include "mlx/backend/metal/device.h"

namespace mlxr::metal {

namespace {

// mlxr.metallib is installed next to the extension module (csrc/metal/metal.cmake).
const std::string& library_dir() {
  static const std::string dir = [] {
    Dl_info info;
    if (!dladdr(reinterpret_cast<void*>(&library_dir), &info)) {
      throw std::runtime_error("[mlxr] cannot locate the extension module to load mlxr.metallib");
    }
    return std::filesystem::path(info.dli_fname).parent_path().string();
  }();
  return dir;
}

} // namespace

std::string encode(
    const PlanFn& make_plan,
    const std::vector<mx::array>& inputs,
    std::vector<mx::array>& outputs,
    mx::Stream stream) {
  auto& d = mx::metal::device(stream.device);
  auto* lib = d.get_library("mlxr", library_dir());
  metal_launch::DeviceLimits limits;
  metal_launch::Plan plan = make_plan(limits);
  auto* kernel = d.get_kernel(plan.kernel, lib);
  size_t max_threads = kernel->maxTotalThreadsPerThreadgroup();
  if (plan.threads_per_group() > max_threads) {
    limits.max_threads_per_group = max_threads;
    plan = make_plan(limits);
    kernel = d.get_kernel(plan.kernel, lib);
    if (plan.threads_per_group() > kernel->maxTotalThreadsPerThreadgroup()) {
      throw std::runtime_error("[mlxr] " + plan.kernel + ": threadgroup exceeds the pipeline limit");
    }
  }

  auto& encoder = mx::metal::get_command_encoder(stream);
  encoder.set_compute_pipeline_state(kernel);
  for (const metal_launch::Arg& arg : plan.args) {
    switch (arg.kind) {
      case metal_launch::ArgKind::input:
        encoder.set_input_array(inputs.at(arg.array), arg.index);
        break;
      case metal_launch::ArgKind::output:
        encoder.set_output_array(outputs.at(arg.array), arg.index);
        break;
      case metal_launch::ArgKind::bytes:
        encoder.set_bytes(arg.bytes.data(), static_cast<int>(arg.bytes.size()), arg.index);
        break;
    }
  }
  encoder.dispatch_threadgroups(
      MTL::Size(plan.grid[0], plan.grid[1], plan.grid[2]),
      MTL::Size(plan.group[0], plan.group[1], plan.group[2]));
  return plan.kernel;
}

void require_kernel_dtype(const char* op, const mx::array& out) {
  if (out.dtype() != mx::float32 && out.dtype() != mx::float16 && out.dtype() != mx::bfloat16) {
    throw std::runtime_error(std::string("[") + op + "] no Metal kernel for this dtype");
  }
}

void allocate_output(mx::array& out, const mx::array& donor) {
  if (donor.is_donatable() && donor.itemsize() == out.itemsize()) {
    out.copy_shared_buffer(donor);
  } else {
    out.set_data(mx::allocator::malloc(out.nbytes()));
  }
}

int64_t row_size(const char* op, const mx::array& x, const mx::array& out) {
  require_kernel_dtype(op, out);
  if (!x.flags().row_contiguous) {
    // The op inserts mx::contiguous on GPU streams, so this is a broken invariant.
    throw std::runtime_error(std::string("[") + op + "] the Metal kernel needs a row-contiguous x");
  }
  int64_t axis_size = x.ndim() ? x.shape(-1) : 1;
  if (axis_size > static_cast<int64_t>(UINT32_MAX)) {
    throw std::runtime_error(std::string("[") + op + "] rows longer than 2^32 - 1 elements");
  }
  return axis_size;
}

} // namespace mlxr::metal
