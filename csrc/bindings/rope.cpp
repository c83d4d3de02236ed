#include <map>
#include <mutex>
#include <tuple>

#include "bindings/hot_path.h"
#include "bindings/reference_call.h"
#include "rope.h"

namespace mlxr {

namespace {

mx::array build(const mx::array& x, const mx::array& offset, const mx::array& inv_freqs, int dims, bool traditional,
                double scale, bool forward, nb::handle reference, mx::Stream stream) {
  PyObject* ref = keep_reference(reference);
  auto make = [ref, dims, traditional, scale, stream](bool direction) -> Fallback {
    return [=](const std::vector<mx::array>& in) {
      return call_reference(ref, stream, in[0], in[1], in[2], dims, traditional, scale, direction);
    };
  };
  return rope(x, offset, inv_freqs, dims, traditional, scale, forward, make(forward), make(!forward), stream);
}

// float32 base frequencies by (dims, base, device), as fused/rope.py's cache holds them (it
// hands each over when it builds one): the hot path never builds them itself.
using FreqKey = std::tuple<int, double, int, int>;
std::mutex freqs_mutex;
auto& freqs = *new std::map<FreqKey, mx::array>(); // never destroyed: arrays must not outlive MLX

FreqKey freq_key(int dims, double base, const mx::Device& device) {
  return {dims, base, static_cast<int>(device.type), device.index};
}

// An int32 array of one or `batch` offsets (ndim <= 1), or a Python int: else false.
bool offset_arg(nb::handle h, int batch, std::optional<mx::array>& out) {
  int value;
  if (hot::int32(h, value)) {
    out = mx::array(value, mx::int32);
    return true;
  }
  const mx::array* a = hot::array(h);
  if (!a || a->dtype() != mx::int32 || a->ndim() > 1 || (a->size() != 1 && static_cast<int>(a->size()) != batch)) {
    return false;
  }
  out = *a;
  return true;
}

} // namespace

void bind_rope(nb::module_& m) {
  m.def(
      "rope",
      [](const mx::array& x, const mx::array& offset, const mx::array& inv_freqs, int dims, bool traditional,
         double scale, bool forward, nb::callable reference, mx::Stream stream) {
        return build(x, offset, inv_freqs, dims, traditional, scale, forward, reference, stream);
      },
      nb::arg("x"),
      nb::arg("offset"),
      nb::arg("inv_freqs"),
      nb::arg("dims"),
      nb::arg("traditional"),
      nb::arg("scale"),
      nb::arg("forward"),
      nb::arg("reference"),
      nb::arg("stream"),
      "Fused RoPE primitive (validated arguments; see mlxr.fused.rope). `reference` is "
      "rope_rotate(x, offset, inv_freqs, dims, traditional, scale, forward).");
  m.def(
      "rope_keep_inv_freqs",
      [](int dims, double base, mx::Device device, const mx::array& inv_freqs) {
        std::lock_guard lock(freqs_mutex);
        freqs.insert_or_assign(freq_key(dims, base, device), inv_freqs);
      },
      "Hands the hot path fused/rope.py's float32 base frequencies for (dims, base, device).");
  m.def(
      "rope_hot",
      [](nb::handle a, nb::handle dims, nb::handle traditional, nb::handle base, nb::handle scale, nb::handle offset,
         nb::handle reference) -> nb::object {
        const mx::array* x = hot::array(a, 3);
        int d;
        bool trad;
        double b, s;
        std::optional<mx::array> off;
        if (!x || x->dtype() == mx::float64 || !hot::int32(dims, d) || d <= 0 || d % 2 || d > x->shape(-1) ||
            !hot::boolean(traditional, trad) || !hot::real(base, b, 0.0, true) || !hot::real(scale, s) ||
            !offset_arg(offset, x->shape(0), off)) {
          return nb::none();
        }
        auto stream = hot::kernel_stream("rope", x->dtype());
        if (!stream) {
          return nb::none();
        }
        std::optional<mx::array> inv;
        {
          std::lock_guard lock(freqs_mutex);
          auto it = freqs.find(freq_key(d, b, stream->device));
          if (it == freqs.end()) {
            return nb::none(); // the Python path builds them (once) and hands them over
          }
          inv = it->second;
        }
        return nb::cast(build(*x, *off, *inv, d, trad, s, true, reference, *stream));
      },
      nb::arg("a").none(), nb::arg("dims").none(), nb::arg("traditional").none(), nb::arg("base").none(),
      nb::arg("scale").none(), nb::arg("offset").none(), nb::arg("reference").none(),
      "rope(a, dims, traditional, base, scale, offset) with base frequencies for the common call, "
      "else None (bindings/hot_path.h).");
}

} // namespace mlxr
