// Encodes a launch plan (launch/plan.h) on MLX's Metal command encoder. Host files of ops
// build their plan and call encode(); the set_* order and buffer indices come from the plan,
// which is also what the simulator (conformance/metal_sim) executes.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "metal/launch/plan.h"
#include "mlx/array.h"
#include "mlx/stream.h"

namespace mlxr::metal {

namespace mx = mlx::core;

using PlanFn = std::function<metal_launch::Plan(const metal_launch::DeviceLimits&)>;

// Looks the plan's kernel up in mlxr.metallib (next to the extension module), plans again with
// the pipeline's thread limit when the first plan asks for more, binds inputs / outputs /
// bytes as the plan lists them, dispatches threadgroups and records the kernel as run on the
// GPU (kernel_log.h). Returns the kernel's name.
std::string encode(
    const PlanFn& make_plan,
    const std::vector<mx::array>& inputs,
    std::vector<mx::array>& outputs,
    mx::Stream stream);

// encode() of an op's plan function (launch/<op>.h) for `query`.
template <typename Query>
std::string encode(
    metal_launch::Plan (*plan)(const Query&, const metal_launch::DeviceLimits&),
    const Query& query,
    const std::vector<mx::array>& inputs,
    std::vector<mx::array>& outputs,
    mx::Stream stream) {
  return encode(
      [&](const metal_launch::DeviceLimits& limits) { return plan(query, limits); },
      inputs,
      outputs,
      stream);
}

// Checks the row kernels' invariants (a float32 / float16 / bfloat16 `out`, a row-contiguous
// `x`, rows of at most 2^32 - 1 elements) and returns the row length.
int64_t row_size(const char* op, const mx::array& x, const mx::array& out);

// Gives `out` the buffer of a donated `in` of the same item size (the row kernels read each
// element before any thread writes it: metal-sim certifies them race-free in place), else a
// fresh one.
void reuse_or_allocate(const mx::array& in, mx::array& out);

} // namespace mlxr::metal
