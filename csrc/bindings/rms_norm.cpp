#include <nanobind/stl/optional.h>

#include "bindings/hot_path.h"
#include "bindings/reference_call.h"
#include "rms_norm.h"

namespace mlxr {

namespace {

mx::array build(const mx::array& x, const std::optional<mx::array>& weight, double eps, nb::handle reference,
                mx::Stream stream) {
  PyObject* ref = keep_reference(reference);
  bool has_weight = weight.has_value();
  Fallback fallback = [ref, eps, has_weight, stream](const std::vector<mx::array>& in) {
    nb::gil_scoped_acquire gil;
    return call_reference(ref, stream, in[0], array_or_none(in, has_weight, 1), eps);
  };
  return rms_norm(x, weight, eps, std::move(fallback), stream);
}

} // namespace

void bind_rms_norm(nb::module_& m) {
  m.def(
      "rms_norm",
      [](const mx::array& x, const std::optional<mx::array>& weight, double eps, nb::callable reference,
         mx::Stream stream) { return build(x, weight, eps, reference, stream); },
      nb::arg("x"),
      nb::arg("weight").none(),
      nb::arg("eps"),
      nb::arg("reference"),
      nb::arg("stream"),
      "Fused RMSNorm primitive (validated arguments; see mlxr.fused.rms_norm).");
  m.def(
      "rms_norm_hot",
      [](nb::handle x, nb::handle weight, nb::handle eps, nb::handle reference) -> nb::object {
        const mx::array* xa = hot::array(x, 1);
        std::optional<mx::array> w;
        double e;
        if (!xa || !hot::last_axis_param(weight, *xa, w) || !hot::real(eps, e, 0.0)) {
          return nb::none();
        }
        auto stream = hot::kernel_stream("rms_norm", xa->dtype());
        return stream ? nb::cast(build(*xa, w, e, reference, *stream)) : nb::none();
      },
      nb::arg("x").none(), nb::arg("weight").none(), nb::arg("eps").none(), nb::arg("reference").none(),
      "rms_norm(x, weight, eps) for the common call, else None (bindings/hot_path.h).");
}

} // namespace mlxr
