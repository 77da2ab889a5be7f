#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "aidge/incremental/memory/ExemplarMemory.hpp"
#include "aidge/incremental/memory/ExemplarSelection.hpp"
#include "aidge/incremental/memory/NearestMeanOfExemplars.hpp"
#include "aidge/incremental/memory/ReservoirMemory.hpp"

namespace py = pybind11;

namespace Aidge {
namespace incremental {

namespace {

using FloatMatrix = py::array_t<float, py::array::c_style | py::array::forcecast>;
using LabelVector = py::array_t<std::int64_t, py::array::c_style | py::array::forcecast>;

// Argument conversion at the boundary: every refusal names the argument and
// what it accepts, instead of pybind11's list of overloads.

/// A Python integer (or anything with __index__, e.g. np.int64) in [lo, hi].
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

std::size_t sizeArg(const py::handle &h, const char *fn, const char *name, std::int64_t lo = 0,
                    std::int64_t hi = std::int64_t{1} << 62)
{
    return static_cast<std::size_t>(intArg(h, fn, name, lo, hi));
}

/// Seeds are any integer in [0, 2^64).
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

/// An array of a plain numeric dtype (not complex, not object/string).
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

/// A 2-D float32 matrix; finite values beyond float32's range are refused
/// (a cast would turn them into inf), NaN/inf are left to the core's check.
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

/// A vector of int64 labels from any integer array (uint64 >= 2^63 refused).
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

template <class T> py::array_t<std::int64_t> toNumpy(const std::vector<T> &v)
{
    py::array_t<std::int64_t> out(static_cast<py::ssize_t>(v.size()));
    auto *p = out.mutable_data();
    for (std::size_t i = 0; i < v.size(); ++i) {
        p[i] = static_cast<std::int64_t>(v[i]);
    }
    return out;
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

/// A read-only NumPy view of count samples in buf, keeping buf alive.
template <class Buffer>
py::array samplesView(const std::shared_ptr<Buffer> &buf, std::size_t count,
                      const SampleLayout &layout)
{
    std::vector<py::ssize_t> shape{static_cast<py::ssize_t>(count)};
    for (std::size_t dim : layout.shape) {
        shape.push_back(static_cast<py::ssize_t>(dim));
    }
    auto *holder = new std::shared_ptr<Buffer>(buf);
    py::capsule base(holder, [](void *p) { delete static_cast<std::shared_ptr<Buffer> *>(p); });
    py::array view(py::dtype(layout.dtype), shape, static_cast<const void *>(buf->data()), base);
    py::detail::array_proxy(view.ptr())->flags &= ~py::detail::npy_api::NPY_ARRAY_WRITEABLE_;
    return view;
}

/// Raw bytes of count samples in a C-contiguous array of the layout's type.
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

ExemplarMemory::Policy policyFrom(const std::string &name)
{
    if (name == "total") {
        return ExemplarMemory::Policy::Total;
    }
    if (name == "per_class") {
        return ExemplarMemory::Policy::PerClass;
    }
    throw std::invalid_argument(
        fmt::format("budget policy must be 'total' or 'per_class', got '{}'", name));
}

} // namespace

void init_Memory(py::module &m)
{
    py::register_exception<CorruptFileError>(m, "CorruptFileError", PyExc_ValueError);

    m.def(
        "herding_selection",
        [](const py::object &featuresArg, const py::object &mArg) {
            const FloatMatrix features = floatMatrix(featuresArg, "herding_selection", "features");
            const std::size_t m = sizeArg(mArg, "herding_selection", "m");
            std::vector<std::size_t> idx;
            {
                py::gil_scoped_release release;
                idx = herdingSelection(features.data(), features.shape(0), features.shape(1), m);
            }
            return toNumpy(idx);
        },
        py::arg("features"), py::arg("m"),
        "iCaRL herding (Algorithm 4): m indices in selection order.");
    m.def(
        "closest_to_mean_selection",
        [](const py::object &featuresArg, const py::object &mArg) {
            const FloatMatrix features = floatMatrix(featuresArg, "closest_to_mean_selection", "features");
            const std::size_t m = sizeArg(mArg, "closest_to_mean_selection", "m");
            std::vector<std::size_t> idx;
            {
                py::gil_scoped_release release;
                idx = closestToMeanSelection(features.data(), features.shape(0), features.shape(1), m);
            }
            return toNumpy(idx);
        },
        py::arg("features"), py::arg("m"));
    m.def(
        "random_selection",
        [](const py::object &nArg, const py::object &mArg, const py::object &seedArg_) {
            // n is bounded so that the index table (8 bytes each) stays allocatable.
            const std::size_t n = sizeArg(nArg, "random_selection", "n", 0, std::int64_t{1} << 36);
            const std::size_t m = sizeArg(mArg, "random_selection", "m", 0, static_cast<std::int64_t>(n));
            return toNumpy(randomSelection(n, m, seedArg(seedArg_, "random_selection", "seed")));
        },
        py::arg("n"), py::arg("m"), py::arg("seed"));
    m.def(
        "class_means",
        [](const py::object &featuresArg, const py::object &labelsArg, const py::object &nbArg) {
            const FloatMatrix features = floatMatrix(featuresArg, "class_means", "features");
            const LabelVector labels = labelVector(labelsArg, "class_means", "labels");
            const std::size_t nbClasses = sizeArg(nbArg, "class_means", "n_classes", 1,
                                                  std::max<py::ssize_t>(1, features.shape(0)));
            if (labels.shape(0) != features.shape(0)) {
                throw py::value_error(fmt::format(
                    "class_means: argument 'labels' must have {} entries, one per feature row, got {}",
                    features.shape(0), labels.shape(0)));
            }
            const std::size_t d = features.shape(1);
            auto means = classMeans(features.data(), labels.data(), features.shape(0), d, nbClasses);
            py::array_t<float> out({static_cast<py::ssize_t>(nbClasses), static_cast<py::ssize_t>(d)});
            std::copy(means.begin(), means.end(), out.mutable_data());
            return out;
        },
        py::arg("features"), py::arg("labels"), py::arg("n_classes"));
    m.def(
        "nme_classify",
        [](const py::object &featuresArg, const py::object &meansArg) {
            const FloatMatrix features = floatMatrix(featuresArg, "nme_classify", "features");
            const FloatMatrix means = floatMatrix(meansArg, "nme_classify", "means");
            if (features.shape(1) != means.shape(1)) {
                throw py::value_error(fmt::format(
                    "nme_classify: argument 'features' has dimension {} but 'means' {}",
                    features.shape(1), means.shape(1)));
            }
            std::vector<std::int64_t> pred;
            {
                py::gil_scoped_release release;
                pred = nmeClassify(features.data(), features.shape(0), features.shape(1),
                                   means.data(), means.shape(0));
            }
            return toNumpy(pred);
        },
        py::arg("features"), py::arg("means"),
        "Index of the nearest class mean per row; -1 for an all-zero row (no direction).");

    py::class_<ExemplarMemory>(m, "ExemplarMemoryCore")
        .def(py::init([](const std::string &policy, const py::object &budget,
                         const py::object &sampleShape, const py::object &dtype) {
                 const char *fn = "ExemplarMemoryCore";
                 return ExemplarMemory(policyFrom(policy), sizeArg(budget, fn, "budget", 1),
                                       layoutFrom(shapeArg(sampleShape, fn, "sample_shape"), dtype));
             }),
             py::arg("policy"), py::arg("budget"), py::arg("sample_shape"), py::arg("dtype"))
        .def("quotas", [](const ExemplarMemory &mem, const py::object &n) {
                 return mem.quotas(sizeArg(n, "quotas", "n_classes"));
             }, py::arg("n_classes"))
        .def("reduce", [](ExemplarMemory &mem, const py::object &n) {
                 mem.reduce(sizeArg(n, "reduce", "n_classes_after"));
             }, py::arg("n_classes_after"))
        .def("add_class",
             [](ExemplarMemory &mem, const py::object &label, const py::array &samples) {
                 std::size_t count = 0;
                 const std::int64_t l = intArg(label, "add_class", "label",
                                               std::numeric_limits<std::int64_t>::min(),
                                               std::numeric_limits<std::int64_t>::max());
                 const std::uint8_t *bytes = sampleBytes(samples, mem.layout(), count);
                 mem.addClass(l, bytes, count);
             },
             py::arg("label"), py::arg("samples"))
        .def("add_classes",
             [](ExemplarMemory &mem, const py::list &labels, const py::list &samples) {
                 if (labels.size() != samples.size()) {
                     throw py::value_error("add_classes: 'labels' and 'samples' differ in length");
                 }
                 std::vector<std::int64_t> ls;
                 std::vector<const std::uint8_t *> ptrs;
                 std::vector<std::size_t> counts;
                 std::vector<py::array> keep; // the arrays outlive the raw pointers
                 for (std::size_t i = 0; i < labels.size(); ++i) {
                     ls.push_back(intArg(labels[i], "add_classes", "labels",
                                         std::numeric_limits<std::int64_t>::min(),
                                         std::numeric_limits<std::int64_t>::max()));
                     keep.push_back(py::array::ensure(samples[i]));
                     if (!keep.back()) {
                         throw py::type_error("add_classes: argument 'samples' must hold arrays");
                     }
                     std::size_t count = 0;
                     ptrs.push_back(sampleBytes(keep.back(), mem.layout(), count));
                     counts.push_back(count);
                 }
                 mem.addClasses(ls, ptrs, counts);
             },
             py::arg("labels"), py::arg("samples"),
             "Reduce the held classes then add these, all or nothing.")
        .def_property_readonly("policy", [](const ExemplarMemory &mem) {
            return mem.policy() == ExemplarMemory::Policy::Total ? "total" : "per_class";
        })
        .def_property_readonly("budget", &ExemplarMemory::budget)
        .def_property_readonly("sample_shape", [](const ExemplarMemory &mem) { return mem.layout().shape; })
        .def_property_readonly("dtype", [](const ExemplarMemory &mem) { return py::dtype(mem.layout().dtype); })
        .def_property_readonly("class_sets", [](const ExemplarMemory &mem) {
            std::vector<std::pair<std::int64_t, std::size_t>> out;
            for (const auto &c : mem.classes()) {
                out.emplace_back(c.label, c.count);
            }
            return out;
        })
        .def("__len__", &ExemplarMemory::size)
        .def_property_readonly("nbytes", &ExemplarMemory::nbytes)
        .def("samples", [](const ExemplarMemory &mem) {
            return samplesView(mem.buffer(), mem.size(), mem.layout());
        })
        .def("save", &ExemplarMemory::save, py::arg("path"))
        .def_static("load", &ExemplarMemory::load, py::arg("path"))
        .def("to_bytes", [](const ExemplarMemory &mem) {
            const auto bytes = mem.toBytes();
            return py::bytes(reinterpret_cast<const char *>(bytes.data()), bytes.size());
        })
        .def_static("from_bytes", [](const py::bytes &data, const std::string &source) {
            const std::string s = data;
            return ExemplarMemory::fromBytes(std::vector<std::uint8_t>(s.begin(), s.end()), source);
        }, py::arg("data"), py::arg("source") = "<bytes>");

    py::class_<ReservoirMemory>(m, "ReservoirMemoryCore")
        .def(py::init([](const py::object &capacity, const py::object &sampleShape,
                         const py::object &dtype, const py::object &seed) {
                 const char *fn = "ReservoirMemoryCore";
                 return ReservoirMemory(sizeArg(capacity, fn, "capacity", 1),
                                        layoutFrom(shapeArg(sampleShape, fn, "sample_shape"), dtype),
                                        seedArg(seed, fn, "seed"));
             }),
             py::arg("capacity"), py::arg("sample_shape"), py::arg("dtype"), py::arg("seed") = 0)
        .def("add_batch",
             [](ReservoirMemory &mem, const py::array &samples, const py::object &labelsArg) {
                 std::size_t count = 0;
                 const std::uint8_t *bytes = sampleBytes(samples, mem.layout(), count);
                 const LabelVector labels = labelVector(labelsArg, "add_batch", "labels");
                 if (static_cast<std::size_t>(labels.shape(0)) != count) {
                     throw py::value_error(fmt::format(
                         "add_batch: argument 'labels' must have {} entries, one per sample", count));
                 }
                 mem.addBatch(bytes, labels.data(), count);
             },
             py::arg("samples"), py::arg("labels"))
        .def_property_readonly("capacity", &ReservoirMemory::capacity)
        .def_property_readonly("seen", &ReservoirMemory::seen)
        .def_property_readonly("sample_shape", [](const ReservoirMemory &mem) { return mem.layout().shape; })
        .def_property_readonly("dtype", [](const ReservoirMemory &mem) { return py::dtype(mem.layout().dtype); })
        .def("__len__", &ReservoirMemory::size)
        .def_property_readonly("nbytes", &ReservoirMemory::nbytes)
        .def("samples", [](const ReservoirMemory &mem) {
            return samplesView(mem.buffer(), mem.size(), mem.layout());
        })
        .def("labels", [](const ReservoirMemory &mem) {
            return py::array_t<std::int64_t>(static_cast<py::ssize_t>(mem.size()), mem.labels().data());
        })
        .def("save", &ReservoirMemory::save, py::arg("path"))
        .def_static("load", &ReservoirMemory::load, py::arg("path"));
}

} // namespace incremental
} // namespace Aidge
