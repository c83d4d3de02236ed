#include <nanobind/stl/optional.h>

#include "bindings/reference_call.h"
#include "layer_norm.h"

namespace mlxr {

void bind_layer_norm(nb::module_& m) {
  m.def(
      "layer_norm",
      [](const mx::array& x,
         const std::optional<mx::array>& weight,
         const std::optional<mx::array>& bias,
         double eps,
         nb::callable reference,
         mx::Stream stream) {
        PyObject* ref = keep_reference(reference);
        bool has_weight = weight.has_value();
        bool has_bias = bias.has_value();
        Fallback fallback = [ref, eps, has_weight, has_bias, stream](
                                const std::vector<mx::array>& in) {
          nb::gil_scoped_acquire gil;
          return call_reference(ref, stream, in[0], array_or_none(in, has_weight, 1),
                                array_or_none(in, has_bias, has_weight ? 2 : 1), eps);
        };
        return layer_norm(x, weight, bias, eps, std::move(fallback), stream);
      },
      nb::arg("x"),
      nb::arg("weight").none(),
      nb::arg("bias").none(),
      nb::arg("eps"),
      nb::arg("reference"),
      nb::arg("stream"),
      "Fused LayerNorm primitive (validated arguments; see mlxr.fused.layer_norm).");
}

} // namespace mlxr
