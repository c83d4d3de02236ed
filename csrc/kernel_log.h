// Which fused kernels actually executed: conformance uses it to prove the fused path ran.
#pragma once

#include <cstdint>
#include <map>
#include <string>

namespace mlxr {

// Called by a kernel when it runs (not when it is scheduled); name is `<op>_<variant>_<dtype>`.
void record_kernel(const std::string& device, const std::string& name);
std::map<std::string, int64_t> kernel_counts();
void reset_kernel_counts();

} // namespace mlxr
