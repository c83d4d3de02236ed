// Type-checking stand-in for mlx/backend/metal/utils.h (see device.h here).
#pragma once

#include <string>

#include "mlx/array.h"
#include "mlx/backend/metal/device.h"

namespace mlx::core {

std::string type_to_name(const Dtype& t);
std::string type_to_name(const array& a);

} // namespace mlx::core
