// Encodes a launch plan (launch/plan.h) on MLX's Metal command encoder. Host files of ops
// build their plan and call encode(); the set_* order and buffer indices come from the plan,
// which is also what the simulator (conformance/metal_sim) executes.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "kernel_log.h"
#include "metal/launch/plan.h"
#include "mlx/array.h"
#include "mlx/stream.h"

namespace mlxr::metal {

namespace mx = mlx::core;

using PlanFn = std::function<metal_launch::Plan(const metal_launch::DeviceLimits&)>;

// Looks the plan's kernel up in mlxr.metallib (next to the extension module), plans again with
// the pipeline's thread limit when the first plan asks for more, binds inputs / outputs /
// bytes as the plan lists them and dispatches threadgroups. Returns the kernel's name.
std::string encode(
    const PlanFn& make_plan,
    const std::vector<mx::array>& inputs,
    std::vector<mx::array>& outputs,
    mx::Stream stream);

// encode() of the plans `plan(query, limits)` gives; the kernel is recorded as run on "gpu".
template <typename Query>
void encode_plan(
    metal_launch::Plan (*plan)(const Query&, const metal_launch::DeviceLimits&),
    const Query& query,
    const std::vector<mx::array>& inputs,
    std::vector<mx::array>& outputs,
    mx::Stream stream) {
  auto make_plan = [&](const metal_launch::DeviceLimits& limits) { return plan(query, limits); };
  record_kernel("gpu", {encode(make_plan, inputs, outputs, stream)});
}

// Throws "[op] no Metal kernel for this dtype" unless out is float32, float16 or bfloat16.
void require_kernel_dtype(const char* op, const mx::array& out);

// Gives out the buffer of `donor` when it is a donated input of out's item size (the kernel
// must then be race-free in place), else a new allocation.
void allocate_output(mx::array& out, const mx::array& donor);

// The row kernels' invariants (require_kernel_dtype, a row-contiguous `x`, rows of at most
// 2^32 - 1 elements); returns the row length.
int64_t row_size(const char* op, const mx::array& x, const mx::array& out);

} // namespace mlxr::metal
