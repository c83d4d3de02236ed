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
// bytes as the plan lists them and dispatches threadgroups. Returns the kernel's name.
std::string encode(
    const PlanFn& make_plan,
    const std::vector<mx::array>& inputs,
    std::vector<mx::array>& outputs,
    mx::Stream stream);

} // namespace mlxr::metal
