// The common call of a fused op, recognised in C++. The Python wrapper's checks cost ~3.5 us a
// call (graph building for 20 decode-sized rms_norm calls: 4.4 us a call against mx.fast's 0.8
// on the H100 host), so each fused op first offers its arguments to `<op>_hot`, which builds the
// primitive when every argument is of the plainest valid kind (arrays of one floating dtype with
// a kernel on the default device, Python floats and ints, no stream) and returns None for
// anything else: errors, promotion, fallbacks and streams stay with the Python path, which
// therefore remains the definition of the op's arguments.
#pragma once

#include <nanobind/nanobind.h>

#include <optional>
#include <string>
#include <vector>

#include "mlx/array.h"
#include "mlx/stream.h"

namespace mlxr::hot {

namespace nb = nanobind;
namespace mx = mlx::core;

// Binds set_kernel_dtypes into the extension module.
void bind(nb::module_& m);

// fused/_dispatch.py's kernel tables, handed over at import (set_kernel_dtypes).
void set_kernel_dtypes(const std::string& op, bool gpu, const std::vector<mx::Dtype>& dtypes);

// The default device's stream when `op` has a kernel there for `dtype`, else nothing.
std::optional<mx::Stream> kernel_stream(const std::string& op, mx::Dtype dtype);

// h as an mx.array with at least min_ndim axes, else null.
const mx::array* array(nb::handle h, int min_ndim = 0);

// None (an absent parameter), or an array of shape (x.shape[-1],) and x's dtype. False for
// anything else (the Python path reports or promotes it).
bool last_axis_param(nb::handle h, const mx::array& x, std::optional<mx::array>& out);

// A Python float or int (exactly: not a bool or a NumPy scalar) as a double, finite, at least
// `min` (`above_min`: strictly above).
bool real(nb::handle h, double& value, double min = -INFINITY, bool above_min = false);

// A Python int (exactly) within int32.
bool int32(nb::handle h, int& value);

// A Python bool.
bool boolean(nb::handle h, bool& value);

} // namespace mlxr::hot
