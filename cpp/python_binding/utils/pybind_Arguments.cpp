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

namespace {

constexpr std::size_t kShownChars = 60;

std::string typeName(const py::handle &h)
{
    return py::str(py::type::handle_of(h).attr("__name__"));
}

std::string shortRepr(const py::handle &h)
{
    std::string text;
    try {
        text = py::repr(h);
    } catch (const py::error_already_set &) {
        return "<unprintable>";
    }
    if (text.size() > kShownChars) {
        text = text.substr(0, kShownChars) + "...";
    }
    return text;
}

std::string rangeText(const FloatRange &r)
{
    return fmt::format("{}{:g}, {:g}{}", r.loOpen ? "(" : "[", r.lo, r.hi, r.hiOpen ? ")" : "]");
}

} // namespace

std::string describe(const py::handle &h)
{
    if (h.is_none()) {
        return "None";
    }
    if (py::isinstance<py::array>(h)) {
        const py::array a = py::reinterpret_borrow<py::array>(h);
        std::vector<py::ssize_t> shape(a.shape(), a.shape() + a.ndim());
        return fmt::format("an array of shape ({}) and dtype {}", fmt::join(shape, ", "),
                           std::string(py::str(a.dtype())));
    }
    return fmt::format("{} {}", typeName(h), shortRepr(h));
}

std::string describeArguments(NamedArguments args)
{
    std::string out;
    for (const auto &arg : args) {
        out += fmt::format("{}'{}' = {}", out.empty() ? "" : ", ", arg.first, describe(arg.second));
    }
    return out;
}

// ------------------------------------------------------------------ scalars --

FloatRange anyFloat32()
{
    const double m = std::numeric_limits<float>::max();
    return {-m, m};
}

FloatRange positiveFloat32()
{
    return {std::numeric_limits<float>::min(), std::numeric_limits<float>::max()};
}

double floatArg(const py::handle &h, const char *fn, const char *name, const FloatRange &range)
{
    const bool number = !PyBool_Check(h.ptr()) && !py::isinstance<py::str>(h) && !py::isinstance<py::bytes>(h) &&
                        (PyFloat_Check(h.ptr()) || PyLong_Check(h.ptr()) || PyIndex_Check(h.ptr()) ||
                         py::hasattr(h, "__float__")) &&
                        !PyComplex_Check(h.ptr()) && !py::isinstance<py::array>(h);
    if (!number) {
        throw py::type_error(fmt::format("{}: argument '{}' must be a real number in {}, got {}", fn, name,
                                         rangeText(range), describe(h)));
    }
    const double v = PyFloat_AsDouble(h.ptr());
    if (v == -1.0 && PyErr_Occurred()) {
        PyErr_Clear();  // e.g. an integer too large for a double
        throw py::value_error(fmt::format("{}: argument '{}' must be a finite number in {}, got {}", fn, name,
                                          rangeText(range), describe(h)));
    }
    const bool above = range.loOpen ? v > range.lo : v >= range.lo;
    const bool below = range.hiOpen ? v < range.hi : v <= range.hi;
    if (!std::isfinite(v) || !above || !below) {
        throw py::value_error(fmt::format("{}: argument '{}' must be a finite number in {}, got {}", fn, name,
                                          rangeText(range), describe(h)));
    }
    return v;
}

bool boolArg(const py::handle &h, const char *fn, const char *name)
{
    if (PyBool_Check(h.ptr())) {
        return h.ptr() == Py_True;
    }
    const py::module_ numpy = py::module_::import("numpy");
    if (py::isinstance(h, numpy.attr("bool_"))) {
        return h.cast<bool>();
    }
    throw py::type_error(fmt::format("{}: argument '{}' must be True or False, got {}", fn, name, describe(h)));
}

std::string strArg(const py::handle &h, const char *fn, const char *name)
{
    if (!py::isinstance<py::str>(h)) {
        throw py::type_error(fmt::format("{}: argument '{}' must be a str, got {}", fn, name, describe(h)));
    }
    return h.cast<std::string>();
}

std::string pathArg(const py::handle &h, const char *fn, const char *name)
{
    py::object path = py::reinterpret_borrow<py::object>(h);
    if (!py::isinstance<py::str>(h) && py::hasattr(h, "__fspath__")) {
        path = py::module_::import("os").attr("fspath")(h);
    }
    if (!py::isinstance<py::str>(path)) {
        throw py::type_error(fmt::format("{}: argument '{}' must be a path (str or os.PathLike), got {}", fn,
                                         name, describe(h)));
    }
    const std::string text = path.cast<std::string>();
    if (text.empty() || text.find('\0') != std::string::npos) {
        throw py::value_error(fmt::format("{}: argument '{}' must be a non-empty path without NUL, got {}", fn,
                                          name, describe(h)));
    }
    return text;
}

std::vector<std::uint8_t> bytesArg(const py::handle &h, const char *fn, const char *name)
{
    if (!PyObject_CheckBuffer(h.ptr()) || py::isinstance<py::str>(h) || py::isinstance<py::array>(h)) {
        throw py::type_error(fmt::format("{}: argument '{}' must be bytes or bytearray, got {}", fn, name,
                                         describe(h)));
    }
    Py_buffer view;
    if (PyObject_GetBuffer(h.ptr(), &view, PyBUF_SIMPLE) != 0) {
        PyErr_Clear();
        throw py::type_error(fmt::format("{}: argument '{}' must be a contiguous buffer of bytes, got {}", fn,
                                         name, describe(h)));
    }
    const auto *p = static_cast<const std::uint8_t *>(view.buf);
    std::vector<std::uint8_t> out(p, p + view.len);
    PyBuffer_Release(&view);
    return out;
}

DistillationForm formArg(const py::handle &h, const char *fn, const char *name)
{
    if (py::isinstance<py::str>(h)) {
        const std::string text = h.cast<std::string>();
        if (text == "kl" || text == "bce") {
            return parseDistillationForm(text);
        }
        throw py::value_error(fmt::format("{}: argument '{}' must be 'kl' or 'bce', got {}", fn, name, describe(h)));
    }
    try {
        return h.cast<DistillationForm>();
    } catch (const py::cast_error &) {
        throw py::type_error(fmt::format("{}: argument '{}' must be 'kl', 'bce' or a DistillationForm, got {}", fn,
                                         name, describe(h)));
    }
}

// ---------------------------------------------------------- integers, arrays --

std::int64_t intArg(const py::handle &h, const char *fn, const char *name, std::int64_t lo,
                    std::int64_t hi)
{
    if (PyBool_Check(h.ptr()) || !PyIndex_Check(h.ptr())) {
        throw py::type_error(fmt::format("{}: argument '{}' must be an integer in [{}, {}], got {}",
                                         fn, name, lo, hi, describe(h)));
    }
    py::object index = py::reinterpret_steal<py::object>(PyNumber_Index(h.ptr()));
    if (!index) {  // e.g. an array of several values, whose __index__ refuses
        PyErr_Clear();
        throw py::type_error(fmt::format("{}: argument '{}' must be an integer in [{}, {}], got {}",
                                         fn, name, lo, hi, describe(h)));
    }
    int overflow = 0;
    const long long v = PyLong_AsLongLongAndOverflow(index.ptr(), &overflow);
    if (overflow != 0 || v < lo || v > hi) {
        throw py::value_error(fmt::format("{}: argument '{}' must be an integer in [{}, {}], got {}",
                                          fn, name, lo, hi, describe(h)));
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
                                         fn, name, describe(h)));
    }
    py::object index = py::reinterpret_steal<py::object>(PyNumber_Index(h.ptr()));
    if (!index) {
        PyErr_Clear();
        throw py::type_error(fmt::format("{}: argument '{}' must be an integer in [0, 2^64), got {}",
                                         fn, name, describe(h)));
    }
    const unsigned long long v = PyLong_AsUnsignedLongLong(index.ptr());
    if (PyErr_Occurred()) {
        PyErr_Clear();
        throw py::value_error(fmt::format("{}: argument '{}' must be an integer in [0, 2^64), got {}",
                                          fn, name, describe(h)));
    }
    return static_cast<std::uint64_t>(v);
}

namespace {

/// NumPy's reading of h as an array, or a null object (never py::array(), which
/// is an empty float64 array, not "nothing").
py::object asArray(const py::handle &h)
{
    if (h.is_none() || py::isinstance<py::str>(h) || py::isinstance<py::bytes>(h)) {
        return py::object();
    }
    try {
        return py::array::ensure(h);
    } catch (const py::error_already_set &) {
        return py::object();
    }
}

} // namespace

py::array arrayArg(const py::handle &h, const char *fn, const char *name)
{
    const py::object a = asArray(h);
    if (!a) {
        throw py::type_error(fmt::format("{}: argument '{}' must be an array, got {}", fn, name, describe(h)));
    }
    return py::reinterpret_borrow<py::array>(a);
}

py::array numericArray(const py::handle &h, const char *fn, const char *name)
{
    const py::object converted = asArray(h);
    if (!converted) {
        throw py::type_error(fmt::format("{}: argument '{}' must be an array of numbers, got {}", fn,
                                         name, describe(h)));
    }
    py::array a = py::reinterpret_borrow<py::array>(converted);
    const char kind = a.dtype().kind();
    if (kind == 'c') {
        throw py::type_error(fmt::format(
            "{}: argument '{}' is complex ({}); take its real part or magnitude explicitly", fn, name,
            describe(h)));
    }
    if (kind != 'b' && kind != 'i' && kind != 'u' && kind != 'f') {
        throw py::type_error(fmt::format("{}: argument '{}' must hold real numbers, got {}",
                                         fn, name, describe(h)));
    }
    return a;
}

FloatMatrix floatMatrix(const py::handle &h, const char *fn, const char *name)
{
    py::array a = numericArray(h, fn, name);
    if (a.ndim() != 2) {
        throw py::value_error(fmt::format("{}: argument '{}' must be a 2-D array [n, d], got {}", fn, name,
                                          describe(h)));
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
        throw py::type_error(fmt::format("{}: argument '{}' must hold integers, got {}", fn, name, describe(h)));
    }
    if (a.ndim() != 1) {
        throw py::value_error(fmt::format("{}: argument '{}' must be a vector, got {}", fn, name, describe(h)));
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
    if (!py::isinstance<py::sequence>(h) || py::isinstance<py::str>(h) || py::isinstance<py::bytes>(h)) {
        throw py::type_error(fmt::format("{}: argument '{}' must be a sequence of integers, got {}", fn, name,
                                         describe(h)));
    }
    std::vector<std::size_t> shape;
    for (const auto &dim : py::reinterpret_borrow<py::sequence>(h)) {
        shape.push_back(sizeArg(dim, fn, name, 1));
        if (shape.size() > 32) {
            throw py::value_error(fmt::format("{}: argument '{}' has more than 32 dimensions, got {}", fn, name,
                                              describe(h)));
        }
    }
    return shape;
}

py::list sequenceArg(const py::handle &h, const char *fn, const char *name)
{
    if (!py::isinstance<py::list>(h) && !py::isinstance<py::tuple>(h)) {
        throw py::type_error(fmt::format("{}: argument '{}' must be a list or tuple, got {}", fn, name,
                                         describe(h)));
    }
    return py::list(py::reinterpret_borrow<py::object>(h));
}

// -------------------------------------------------------------- Aidge objects --

namespace {

template <class T>
std::shared_ptr<T> aidgeObject(const py::handle &h, const char *fn, const char *name, const char *what)
{
    if (!h.is_none()) {
        try {
            auto p = h.cast<std::shared_ptr<T>>();
            if (p) {
                return p;
            }
        } catch (const py::cast_error &) {
        }
    }
    throw py::type_error(fmt::format("{}: argument '{}' must be an {}, got {}", fn, name, what, describe(h)));
}

} // namespace

std::shared_ptr<Tensor> tensorArg(const py::handle &h, const char *fn, const char *name)
{
    return aidgeObject<Tensor>(h, fn, name, "aidge_core.Tensor");
}

std::vector<std::shared_ptr<Tensor>> tensorListArg(const py::handle &h, const char *fn, const char *name)
{
    const py::list items = sequenceArg(h, fn, name);
    std::vector<std::shared_ptr<Tensor>> out;
    for (std::size_t i = 0; i < items.size(); ++i) {
        const std::string item = fmt::format("{}[{}]", name, i);
        out.push_back(aidgeObject<Tensor>(items[i], fn, item.c_str(), "aidge_core.Tensor"));
    }
    return out;
}

std::shared_ptr<Node> nodeArg(const py::handle &h, const char *fn, const char *name)
{
    return aidgeObject<Node>(h, fn, name, "aidge_core.Node");
}

std::shared_ptr<GraphView> graphArg(const py::handle &h, const char *fn, const char *name)
{
    return aidgeObject<GraphView>(h, fn, name, "aidge_core.GraphView");
}

// ------------------------------------------------------------ stored samples --

SampleLayout layoutFrom(const std::vector<std::size_t> &shape, const py::object &dtype, const char *fn)
{
    py::dtype dt;
    try {
        if (dtype.is_none()) {
            throw py::type_error("None");  // NumPy reads None as float64: refuse it as no dtype
        }
        dt = py::dtype::from_args(dtype);
    } catch (const std::exception &) {
        throw py::type_error(fmt::format("{}: argument 'dtype' must be a NumPy dtype, got {}", fn,
                                         describe(dtype)));
    }
    SampleLayout layout{shape, dt.attr("str").cast<std::string>(),
                        static_cast<std::size_t>(dt.itemsize())};
    try {
        layout.check();
    } catch (const std::invalid_argument &e) {
        throw py::value_error(fmt::format("{}: argument 'dtype' / 'sample_shape': {} (got dtype {}, sample_shape "
                                          "[{}])",
                                          fn, e.what(), std::string(py::str(dt)), fmt::join(shape, ", ")));
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
            throw py::value_error(fmt::format("{}: argument '{}' must be None: the memory stores no extra array, "
                                              "got {}", fn, name, describe(h)));
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
                                         "naming the memory's extra arrays, got {}", fn, name, describe(h)));
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

py::tuple extraArrayToNumpy(const SampleExtras &extras, const py::handle &nameArg)
{
    const std::string name = strArg(nameArg, "extra", "name");
    const ExtraArray *array = nullptr;
    try {
        array = &extras.get(name);
    } catch (const std::out_of_range &) {
        std::vector<std::string> names;
        for (const auto &a : extras.arrays()) {
            names.push_back(a.name);
        }
        throw py::value_error(fmt::format("extra: argument 'name': the memory has no extra array {} (it has: {})",
                                          describe(nameArg), names.empty() ? "none" : fmt::format("{}", fmt::join(names, ", "))));
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
                                std::size_t &count, const char *fn, const char *name, const py::handle &given)
{
    const std::string shown = describe(given ? given : py::handle(samples));
    if (!(samples.flags() & py::array::c_style)) {
        throw py::value_error(fmt::format("{}: argument '{}' must be a C-contiguous array, got {}", fn, name,
                                          shown));
    }
    if (samples.dtype().attr("str").cast<std::string>() != layout.dtype) {
        throw py::value_error(fmt::format("{}: argument '{}' must hold samples of dtype {} (what the memory "
                                          "stores), got {}", fn, name, std::string(py::str(py::dtype(layout.dtype))),
                                          shown));
    }
    bool fits = samples.ndim() == static_cast<py::ssize_t>(layout.shape.size() + 1);
    for (std::size_t k = 0; fits && k < layout.shape.size(); ++k) {
        fits = static_cast<std::size_t>(samples.shape(static_cast<py::ssize_t>(k + 1))) == layout.shape[k];
    }
    if (!fits) {
        throw py::value_error(fmt::format("{}: argument '{}' must have shape [n, {}], got {}", fn, name,
                                          fmt::join(layout.shape, ", "), shown));
    }
    count = static_cast<std::size_t>(samples.shape(0));
    return static_cast<const std::uint8_t *>(samples.data());
}

// -------------------------------------------------- what pybind11 refuses --

namespace {

bool isPybindRefusal(const py::error_already_set &e)
{
    if (!e.matches(PyExc_TypeError)) {
        return false;
    }
    const std::string message = py::str(e.value());
    return message.find("incompatible function arguments") != std::string::npos ||
           message.find("incompatible constructor arguments") != std::string::npos;
}

/// A wrapper calling `original` and rewriting pybind11's refusal of the arguments.
py::cpp_function wrapped(const py::object &original, const std::string &name, const std::string &qualname,
                         const py::handle &cls)
{
    const py::object doc = original.attr("__doc__");
    const std::string text = doc.is_none() ? std::string() : doc.cast<std::string>();
    auto call = [original, qualname](const py::args &args, const py::kwargs &kwargs) -> py::object {
        try {
            return original(*args, **kwargs);
        } catch (py::error_already_set &e) {
            if (!isPybindRefusal(e)) {
                throw;
            }
            const py::object explain = py::module_::import("aidge_incremental._arguments").attr("explain");
            throw py::type_error(explain(original, qualname, args, kwargs).cast<std::string>());
        }
    };
    py::options options;
    options.disable_function_signatures();  // the original's docstring already starts with its signature
    if (cls) {
        return py::cpp_function(call, py::name(name.c_str()), py::is_method(cls), py::doc(text.c_str()));
    }
    return py::cpp_function(call, py::name(name.c_str()), py::doc(text.c_str()));
}

bool isBuiltin(const py::handle &h)
{
    return PyCFunction_Check(h.ptr());
}

void wrapClass(py::module &m, const py::handle &cls)
{
    const std::string className = py::str(cls.attr("__name__"));
    const py::dict members(cls.attr("__dict__"));  // a mappingproxy: copied into a dict
    std::vector<std::pair<std::string, py::object>> replacements;
    for (const auto &item : members) {
        const std::string name = py::str(item.first);
        if (name.rfind("_", 0) == 0 && name != "__init__") {
            continue;
        }
        const py::handle value = item.second;
        const std::string qualname = className + "." + name;
        if (PyInstanceMethod_Check(value.ptr())) {
            py::object function = py::reinterpret_borrow<py::object>(PyInstanceMethod_GET_FUNCTION(value.ptr()));
            if (isBuiltin(function)) {
                replacements.emplace_back(name, wrapped(function, name, name == "__init__" ? className : qualname, cls));
            }
        } else if (py::isinstance<py::staticmethod>(value)) {
            py::object function = value.attr("__func__");
            if (isBuiltin(function)) {
                replacements.emplace_back(name, py::staticmethod(wrapped(function, name, qualname, py::handle())));
            }
        }
    }
    for (auto &replacement : replacements) {
        py::setattr(cls, replacement.first.c_str(), replacement.second);
    }
    (void)m;
}

void wrapModule(py::module &m, const std::string &prefix)
{
    const std::string moduleName = py::str(m.attr("__name__"));
    std::vector<std::pair<std::string, py::object>> replacements;
    for (const auto &item : py::reinterpret_borrow<py::dict>(m.attr("__dict__"))) {
        const std::string name = py::str(item.first);
        if (name.rfind("_", 0) == 0) {
            continue;
        }
        const py::handle value = item.second;
        if (isBuiltin(value)) {
            replacements.emplace_back(
                name, wrapped(py::reinterpret_borrow<py::object>(value), name, prefix + name, py::handle()));
        } else if (py::isinstance<py::type>(value) && py::hasattr(value, "__module__") &&
                   py::str(value.attr("__module__")).cast<std::string>() == moduleName &&
                   !PyType_IsSubtype(reinterpret_cast<PyTypeObject *>(value.ptr()),
                                     reinterpret_cast<PyTypeObject *>(PyExc_BaseException))) {
            wrapClass(m, value);
        }
    }
    for (auto &replacement : replacements) {
        m.attr(replacement.first.c_str()) = replacement.second;
    }
}

} // namespace

void nameArgumentErrors(py::module &m)
{
    wrapModule(m, "");
    for (const auto &item : py::reinterpret_borrow<py::dict>(m.attr("__dict__"))) {
        if (py::isinstance<py::module_>(item.second)) {
            py::module sub = py::reinterpret_borrow<py::module>(item.second);
            const std::string name = py::str(item.first);
            wrapModule(sub, name + ".");
        }
    }
}

} // namespace incremental
} // namespace Aidge
