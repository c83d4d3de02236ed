#include <nanobind/stl/optional.h>

#include "bindings/reference_call.h"
#include "rms_norm.h"

namespace mlxr {

void bind_rms_norm(nb::module_& m) {
  m.def(
      "rms_norm",
      [](const mx::array& x,
         const std::optional<mx::array>& weight,
         double eps,
         nb::callable reference,
         mx::Stream stream) {
        PyObject* ref = keep_reference(reference);
        bool has_weight = weight.has_value();
        Fallback fallback = [ref, eps, has_weight, stream](const std::vector<mx::array>& in) {
          nb::gil_scoped_acquire gil;
          return call_reference(ref, stream, in[0], array_or_none(in, has_weight, 1), eps);
        };
        return rms_norm(x, weight, eps, std::move(fallback), stream);
      },
      nb::arg("x"),
      nb::arg("weight").none(),
      nb::arg("eps"),
      nb::arg("reference"),
      nb::arg("stream"),
      "Fused RMSNorm primitive (validated arguments; see mlxr.fused.rms_norm).");
}

} // namespace mlxr
