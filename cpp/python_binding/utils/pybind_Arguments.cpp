#include "pybind_Arguments.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace Aidge {
namespace incremental {

DistillationForm formFromPy(const py::object &form)
{
    if (py::isinstance<py::str>(form)) {
        return parseDistillationForm(form.cast<std::string>());
    }
    return form.cast<DistillationForm>();
}

std::uint32_t nbOldFromPy(long long nbOld)
{
    if (nbOld < 0 || nbOld > std::numeric_limits<std::uint32_t>::max()) {
        throw std::invalid_argument(fmt::format(
            "n_old must be >= 0 (0 = every teacher column), got {}", nbOld));
    }
    return static_cast<std::uint32_t>(nbOld);
}

std::int64_t intArg(const py::handle &h, const char *fn, const char *name, std::int64_t lo,
                    std::int64_t hi)
{
    if (PyBool_Check(h.ptr()) || !PyIndex_Check(h.ptr())) {
        throw py::type_error(fmt::format("{}: argument '{}' must be an integer in [{}, {}], got {}",
                                         fn, name, lo, hi, std::string(py::str(py::type::of(h)))));
    }
    py::object index = py::reinterpret_steal<py::object>(PyNumber_Index(h.ptr()));
    if (!index) {
        throw py::error_already_set();
    }
    int overflow = 0;
    const long long v = PyLong_AsLongLongAndOverflow(index.ptr(), &overflow);
    if (overflow != 0 || v < lo || v > hi) {
        throw py::value_error(fmt::format("{}: argument '{}' must be an integer in [{}, {}], got {}",
                                          fn, name, lo, hi, std::string(py::str(index))));
    }
    return static_cast<std::int64_t>(v);
}

std::size_t sizeArg(const py::handle &h, const char *fn, const char *name, std::int64_t lo,
                    std::int64_t hi)
{
    return static_cast<std::size_t>(intArg(h, fn, name, lo, hi));
}

std::uint64_t seedArg(const py::handle &h, const char *fn, const char *name)
{
    if (PyBool_Check(h.ptr()) || !PyIndex_Check(h.ptr())) {
        throw py::type_error(fmt::format("{}: argument '{}' must be an integer in [0, 2^64), got {}",
                                         fn, name, std::string(py::str(py::type::of(h)))));
    }
    py::object index = py::reinterpret_steal<py::object>(PyNumber_Index(h.ptr()));
    if (!index) {
        throw py::error_already_set();
    }
    const unsigned long long v = PyLong_AsUnsignedLongLong(index.ptr());
    if (PyErr_Occurred()) {
        PyErr_Clear();
        throw py::value_error(fmt::format("{}: argument '{}' must be an integer in [0, 2^64), got {}",
                                          fn, name, std::string(py::str(index))));
    }
    return static_cast<std::uint64_t>(v);
}

py::array numericArray(const py::handle &h, const char *fn, const char *name)
{
    py::array a;
    try {
        a = py::array::ensure(h);
    } catch (const py::error_already_set &) {
        a = py::array();
    }
    if (!a) {
        throw py::type_error(fmt::format("{}: argument '{}' must be an array of numbers, got {}", fn,
                                         name, std::string(py::str(py::type::of(h)))));
    }
    const char kind = a.dtype().kind();
    if (kind == 'c') {
        throw py::type_error(fmt::format(
            "{}: argument '{}' is complex; take its real part or magnitude explicitly", fn, name));
    }
    if (kind != 'b' && kind != 'i' && kind != 'u' && kind != 'f') {
        throw py::type_error(fmt::format("{}: argument '{}' must hold real numbers, got dtype {}",
                                         fn, name, std::string(py::str(a.dtype()))));
    }
    return a;
}

FloatMatrix floatMatrix(const py::handle &h, const char *fn, const char *name)
{
    py::array a = numericArray(h, fn, name);
    if (a.ndim() != 2) {
        throw py::value_error(fmt::format("{}: argument '{}' must be a 2-D array [n, d], got {} "
                                          "dimensions", fn, name, a.ndim()));
    }
    if (a.dtype().kind() == 'f' && a.dtype().itemsize() > 4) {
        using Doubles = py::array_t<double, py::array::c_style | py::array::forcecast>;
        const Doubles d = Doubles::ensure(a);
        const double *p = d.data();
        const std::size_t cols = static_cast<std::size_t>(d.shape(1));
        for (py::ssize_t i = 0; i < d.size(); ++i) {
            if (std::isfinite(p[i]) && std::fabs(p[i]) > std::numeric_limits<float>::max()) {
                throw py::value_error(fmt::format(
                    "{}: argument '{}' holds {} at [{}, {}], out of float32 range (|x| <= {:g})", fn,
                    name, p[i], static_cast<std::size_t>(i) / cols, static_cast<std::size_t>(i) % cols,
                    std::numeric_limits<float>::max()));
            }
        }
    }
    return FloatMatrix::ensure(a);
}

LabelVector labelVector(const py::handle &h, const char *fn, const char *name)
{
    py::array a = numericArray(h, fn, name);
    const char kind = a.dtype().kind();
    if (kind != 'i' && kind != 'u') {
        throw py::type_error(fmt::format("{}: argument '{}' must hold integers, got dtype {}", fn,
                                         name, std::string(py::str(a.dtype()))));
    }
    if (a.ndim() != 1) {
        throw py::value_error(fmt::format("{}: argument '{}' must be a vector, got {} dimensions",
                                          fn, name, a.ndim()));
    }
    if (kind == 'u' && a.dtype().itemsize() == 8) {
        using U64 = py::array_t<std::uint64_t, py::array::c_style | py::array::forcecast>;
        const U64 u = U64::ensure(a);
        for (py::ssize_t i = 0; i < u.size(); ++i) {
            if (u.data()[i] > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
                throw py::value_error(fmt::format("{}: argument '{}' holds {} at [{}], beyond int64",
                                                  fn, name, u.data()[i], i));
            }
        }
    }
    return LabelVector::ensure(a);
}

std::vector<std::size_t> shapeArg(const py::handle &h, const char *fn, const char *name)
{
    if (!py::isinstance<py::sequence>(h) || py::isinstance<py::str>(h)) {
        throw py::type_error(fmt::format("{}: argument '{}' must be a sequence of integers", fn, name));
    }
    std::vector<std::size_t> shape;
    for (const auto &dim : py::reinterpret_borrow<py::sequence>(h)) {
        shape.push_back(sizeArg(dim, fn, name, 1));
    }
    if (shape.size() > 32) {
        throw py::value_error(fmt::format("{}: argument '{}' has {} dimensions, at most 32", fn, name,
                                          shape.size()));
    }
    return shape;
}

SampleLayout layoutFrom(const std::vector<std::size_t> &shape, const py::object &dtype)
{
    py::dtype dt;
    try {
        dt = py::dtype::from_args(dtype);
    } catch (const py::error_already_set &) {
        throw py::type_error(fmt::format("argument 'dtype': {} is not a NumPy dtype",
                                         std::string(py::repr(dtype))));
    }
    SampleLayout layout{shape, dt.attr("str").cast<std::string>(),
                        static_cast<std::size_t>(dt.itemsize())};
    try {
        layout.check();
    } catch (const std::invalid_argument &e) {
        throw py::value_error(fmt::format("argument 'dtype' / 'sample_shape': {}", e.what()));
    }
    return layout;
}

std::vector<std::pair<std::string, std::size_t>> extraWidthsArg(const py::handle &h, const char *fn,
                                                                const char *name)
{
    std::vector<std::pair<std::string, std::size_t>> out;
    if (h.is_none()) {
        return out;
    }
    if (!py::isinstance<py::dict>(h)) {
        throw py::type_error(fmt::format("{}: argument '{}' must be a mapping {{name: width}}, got {}", fn,
                                         name, std::string(py::str(py::type::of(h)))));
    }
    for (const auto &item : py::reinterpret_borrow<py::dict>(h)) {
        if (!py::isinstance<py::str>(item.first)) {
            throw py::type_error(fmt::format("{}: argument '{}' must have string keys, got {}", fn, name,
                                             std::string(py::repr(item.first))));
        }
        const std::string key = item.first.cast<std::string>();
        const std::string label = fmt::format("{}['{}']", name, key);
        out.emplace_back(key, sizeArg(item.second, fn, label.c_str(), 1,
                                      static_cast<std::int64_t>(kMaxExtraWidth)));
    }
    return out;
}

ExtraInputs extraInputsArg(const py::handle &h, const SampleExtras &declared, std::size_t count,
                           const char *fn, const char *name)
{
    ExtraInputs out;
    const bool none = h.is_none() || (py::isinstance<py::dict>(h) && py::len(h) == 0);
    if (declared.size() == 0) {
        if (!none) {
            throw py::value_error(fmt::format("{}: argument '{}': the memory stores no extra array", fn, name));
        }
        return out;
    }
    if (h.is_none()) {
        throw py::value_error(fmt::format("{}: argument '{}' is missing: the memory stores the extra "
                                          "array(s) {} with every sample", fn, name,
                                          std::string(py::str(extraWidthsToPy(declared)))));
    }
    if (!py::isinstance<py::dict>(h)) {
        throw py::type_error(fmt::format("{}: argument '{}' must be a mapping {{name: array [n, columns]}} "
                                         "naming the memory's extra arrays", fn, name));
    }
    const auto given = py::reinterpret_borrow<py::dict>(h);
    for (const auto &item : given) {
        const std::string key = py::str(item.first);
        bool known = false;
        for (const auto &a : declared.arrays()) {
            known = known || a.name == key;
        }
        if (!known) {
            throw py::value_error(fmt::format("{}: argument '{}' names '{}', not an extra array of the memory",
                                              fn, name, key));
        }
    }
    for (const auto &a : declared.arrays()) {
        const std::string label = fmt::format("{}['{}']", name, a.name);
        if (!given.contains(a.name)) {
            throw py::value_error(fmt::format("{}: argument '{}' lacks the memory's extra array '{}'", fn, name,
                                              a.name));
        }
        FloatMatrix m = floatMatrix(given[py::str(a.name)], fn, label.c_str());
        if (static_cast<std::size_t>(m.shape(0)) != count) {
            throw py::value_error(fmt::format("{}: argument '{}' has {} rows, one per sample ({}) expected", fn,
                                              label, m.shape(0), count));
        }
        out.inputs.push_back({m.data(), static_cast<std::size_t>(m.shape(1))});
        out.arrays.push_back(std::move(m));
    }
    return out;
}

py::tuple extraArrayToNumpy(const SampleExtras &extras, const std::string &name)
{
    const ExtraArray *array = nullptr;
    try {
        array = &extras.get(name);
    } catch (const std::out_of_range &e) {
        throw py::key_error(e.what());
    }
    const auto rows = static_cast<py::ssize_t>(array->valid.size());
    py::array_t<float> values({rows, static_cast<py::ssize_t>(array->width)});
    std::copy(array->values.begin(), array->values.end(), values.mutable_data());
    py::array_t<std::int64_t> valid(rows);
    std::copy(array->valid.begin(), array->valid.end(), valid.mutable_data());
    return py::make_tuple(values, valid);
}

py::dict extraWidthsToPy(const SampleExtras &extras)
{
    py::dict out;
    for (const auto &a : extras.arrays()) {
        out[py::str(a.name)] = a.width;
    }
    return out;
}

const std::uint8_t *sampleBytes(const py::array &samples, const SampleLayout &layout,
                                std::size_t &count)
{
    if (!(samples.flags() & py::array::c_style)) {
        throw std::invalid_argument("samples must be a C-contiguous array");
    }
    if (samples.dtype().attr("str").cast<std::string>() != layout.dtype) {
        throw std::invalid_argument(fmt::format("samples have dtype {}, the memory stores {}",
                                                std::string(py::str(samples.dtype())), layout.dtype));
    }
    if (samples.ndim() != static_cast<py::ssize_t>(layout.shape.size() + 1)) {
        throw std::invalid_argument(fmt::format(
            "samples must have shape [n, {}], got {} dimensions", fmt::join(layout.shape, ", "),
            samples.ndim()));
    }
    for (std::size_t k = 0; k < layout.shape.size(); ++k) {
        if (static_cast<std::size_t>(samples.shape(static_cast<py::ssize_t>(k + 1))) != layout.shape[k]) {
            throw std::invalid_argument(fmt::format("samples must have shape [n, {}]",
                                                    fmt::join(layout.shape, ", ")));
        }
    }
    count = static_cast<std::size_t>(samples.shape(0));
    return static_cast<const std::uint8_t *>(samples.data());
}

} // namespace incremental
} // namespace Aidge
