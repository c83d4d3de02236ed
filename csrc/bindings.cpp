// The extension module mlxr._ext: one bind_<op> per fused op plus the dispatch introspection.
#include <nanobind/nanobind.h>
#include <nanobind/stl/map.h>
#include <nanobind/stl/string.h>

#include "cpu/isa.h"
#include "kernel_log.h"

namespace nb = nanobind;

namespace mlxr {
void bind_rms_norm(nb::module_& m);
void bind_rope(nb::module_& m);
void bind_layer_norm(nb::module_& m);
void bind_add_rms_norm(nb::module_& m);
void bind_softmax(nb::module_& m);
void bind_swiglu(nb::module_& m);
void bind_quantized_matmul(nb::module_& m);
namespace hot {
void bind(nb::module_& m);
} // namespace hot
} // namespace mlxr

NB_MODULE(_ext, m) {
  m.doc() = "mlxr fused MLX primitives";
  m.attr("mlx_backend") = MLXR_MLX_BACKEND; // what the MLX we built against targets
  m.attr("gpu_kernels") = MLXR_GPU_KERNELS; // which GPU kernels are compiled: none, cuda, metal
  m.attr("mlx_version") = MLXR_MLX_VERSION; // the MLX whose headers and libmlx we built against
  m.def("cpu_isa", [] { return mlxr::cpu::isa_name(mlxr::cpu::active_isa()); });
  m.def("kernel_counts", &mlxr::kernel_counts, "Executed fused kernels, keyed 'device:kernel'.");
  m.def("reset_kernel_counts", &mlxr::reset_kernel_counts);

  mlxr::hot::bind(m);
  mlxr::bind_rms_norm(m);
  mlxr::bind_rope(m);
  mlxr::bind_layer_norm(m);
  mlxr::bind_add_rms_norm(m);
  mlxr::bind_softmax(m);
  mlxr::bind_swiglu(m);
  mlxr::bind_quantized_matmul(m);
}
