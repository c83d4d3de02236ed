#include <nanobind/stl/optional.h>

#include "bindings/hot_path.h"
#include "bindings/reference_call.h"
#include "layer_norm.h"

namespace mlxr {

namespace {

mx::array build(const mx::array& x, const std::optional<mx::array>& weight, const std::optional<mx::array>& bias,
                double eps, nb::handle reference, mx::Stream stream) {
  PyObject* ref = keep_reference(reference);
  bool has_weight = weight.has_value();
  bool has_bias = bias.has_value();
  Fallback fallback = [ref, eps, has_weight, has_bias, stream](const std::vector<mx::array>& in) {
    nb::gil_scoped_acquire gil;
    return call_reference(ref, stream, in[0], array_or_none(in, has_weight, 1),
                          array_or_none(in, has_bias, has_weight ? 2 : 1), eps);
  };
  return layer_norm(x, weight, bias, eps, std::move(fallback), stream);
}

} // namespace

void bind_layer_norm(nb::module_& m) {
  m.def(
      "layer_norm",
      [](const mx::array& x, const std::optional<mx::array>& weight, const std::optional<mx::array>& bias,
         double eps, nb::callable reference, mx::Stream stream) {
        return build(x, weight, bias, eps, reference, stream);
      },
      nb::arg("x"),
      nb::arg("weight").none(),
      nb::arg("bias").none(),
      nb::arg("eps"),
      nb::arg("reference"),
      nb::arg("stream"),
      "Fused LayerNorm primitive (validated arguments; see mlxr.fused.layer_norm).");
  m.def(
      "layer_norm_hot",
      [](nb::handle x, nb::handle weight, nb::handle bias, nb::handle eps, nb::handle reference) -> nb::object {
        const mx::array* xa = hot::array(x, 1);
        std::optional<mx::array> w, b;
        double e;
        if (!xa || !hot::last_axis_param(weight, *xa, w) || !hot::last_axis_param(bias, *xa, b) ||
            !hot::real(eps, e, 0.0)) {
          return nb::none();
        }
        auto stream = hot::kernel_stream("layer_norm", xa->dtype());
        return stream ? nb::cast(build(*xa, w, b, e, reference, *stream)) : nb::none();
      },
      nb::arg("x").none(), nb::arg("weight").none(), nb::arg("bias").none(), nb::arg("eps").none(),
      nb::arg("reference").none(),
      "layer_norm(x, weight, bias, eps) for the common call, else None (bindings/hot_path.h).");
}

} // namespace mlxr
