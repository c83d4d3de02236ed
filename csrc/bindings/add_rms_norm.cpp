#include <nanobind/stl/optional.h>
#include <nanobind/stl/vector.h>

#include "add_rms_norm.h"
#include "bindings/reference_call.h"

namespace mlxr {

void bind_add_rms_norm(nb::module_& m) {
  m.def(
      "add_rms_norm",
      [](const mx::array& x,
         const mx::array& residual,
         const std::optional<mx::array>& weight,
         double eps,
         nb::callable reference,
         mx::Stream stream) {
        PyObject* ref = keep_reference(reference);
        bool has_weight = weight.has_value();
        Fallback fallback = [ref, eps, has_weight, stream](const std::vector<mx::array>& in) {
          nb::gil_scoped_acquire gil;
          return call_reference(ref, stream, in[0], in[1], array_or_none(in, has_weight, 2), eps);
        };
        auto outputs = add_rms_norm(x, residual, weight, eps, std::move(fallback), stream);
        return nb::make_tuple(outputs[0], outputs[1]);
      },
      nb::arg("x"),
      nb::arg("residual"),
      nb::arg("weight").none(),
      nb::arg("eps"),
      nb::arg("reference"),
      nb::arg("stream"),
      "Fused residual add + RMSNorm primitive returning (normed, h) (validated arguments; see "
      "mlxr.fused.add_rms_norm).");
}

} // namespace mlxr
