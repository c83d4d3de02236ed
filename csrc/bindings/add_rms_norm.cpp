#include <nanobind/stl/optional.h>
#include <nanobind/stl/vector.h>

#include "add_rms_norm.h"
#include "bindings/hot_path.h"
#include "bindings/reference_call.h"

namespace mlxr {

namespace {

nb::tuple build(const mx::array& x, const mx::array& residual, const std::optional<mx::array>& weight, double eps,
                nb::handle reference, mx::Stream stream) {
  PyObject* ref = keep_reference(reference);
  bool has_weight = weight.has_value();
  Fallback fallback = [ref, eps, has_weight, stream](const std::vector<mx::array>& in) {
    nb::gil_scoped_acquire gil;
    return call_reference(ref, stream, in[0], in[1], array_or_none(in, has_weight, 2), eps);
  };
  auto outputs = add_rms_norm(x, residual, weight, eps, std::move(fallback), stream);
  return nb::make_tuple(outputs[0], outputs[1]);
}

} // namespace

void bind_add_rms_norm(nb::module_& m) {
  m.def(
      "add_rms_norm",
      [](const mx::array& x, const mx::array& residual, const std::optional<mx::array>& weight, double eps,
         nb::callable reference, mx::Stream stream) { return build(x, residual, weight, eps, reference, stream); },
      nb::arg("x"),
      nb::arg("residual"),
      nb::arg("weight").none(),
      nb::arg("eps"),
      nb::arg("reference"),
      nb::arg("stream"),
      "Fused residual add + RMSNorm primitive returning (normed, h) (validated arguments; see "
      "mlxr.fused.add_rms_norm).");
  m.def(
      "add_rms_norm_hot",
      [](nb::handle x, nb::handle residual, nb::handle weight, nb::handle eps, nb::handle reference) -> nb::object {
        const mx::array* xa = hot::array(x, 1);
        const mx::array* ra = hot::array(residual);
        std::optional<mx::array> w;
        double e;
        if (!xa || !ra || ra->shape() != xa->shape() || ra->dtype() != xa->dtype() ||
            !hot::last_axis_param(weight, *xa, w) || !hot::real(eps, e, 0.0)) {
          return nb::none();
        }
        auto stream = hot::kernel_stream("add_rms_norm", xa->dtype());
        return stream ? nb::object(build(*xa, *ra, w, e, reference, *stream)) : nb::none();
      },
      nb::arg("x").none(), nb::arg("residual").none(), nb::arg("weight").none(), nb::arg("eps").none(),
      nb::arg("reference").none(),
      "add_rms_norm(x, residual, weight, eps) for the common call, else None (bindings/hot_path.h).");
}

} // namespace mlxr
