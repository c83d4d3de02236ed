// Which fused kernels actually executed: conformance uses it to prove the fused path ran.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <map>
#include <string>
#include <string_view>

namespace mlxr {

// Called when a kernel runs (CPU) or is encoded into MLX's graph (GPU: when MLX evaluates the
// primitive, not when the graph is built); the name, `<op>_<variant>_<dtype>`, is the
// concatenation of `name`'s pieces. Allocation-free once a name has been seen: GPU
// decode calls are host-bound, and building the name as std::strings cost ~100 ns a call.
void record_kernel(std::string_view device, std::initializer_list<std::string_view> name);
std::map<std::string, int64_t> kernel_counts();
void reset_kernel_counts();

} // namespace mlxr
