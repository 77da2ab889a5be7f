#include <cstdint>
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

namespace py = pybind11;

namespace Aidge {
namespace incremental {

namespace {

using FloatMatrix = py::array_t<float, py::array::c_style | py::array::forcecast>;
using LabelVector = py::array_t<std::int64_t, py::array::c_style | py::array::forcecast>;

void checkMatrix(const FloatMatrix &a, const char *name)
{
    if (a.ndim() != 2) {
        throw std::invalid_argument(
            fmt::format("{} must be a 2-D array [n, d], got {} dimensions", name, a.ndim()));
    }
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
    const py::dtype dt = py::dtype::from_args(dtype);
    if (dt.attr("hasobject").cast<bool>()) {
        throw std::invalid_argument("samples of dtype object cannot be stored in a replay memory");
    }
    return SampleLayout{shape, dt.attr("str").cast<std::string>(),
                        static_cast<std::size_t>(dt.itemsize())};
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
        [](const FloatMatrix &features, std::size_t m) {
            checkMatrix(features, "features");
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
        [](const FloatMatrix &features, std::size_t m) {
            checkMatrix(features, "features");
            py::gil_scoped_release release;
            auto idx = closestToMeanSelection(features.data(), features.shape(0), features.shape(1), m);
            py::gil_scoped_acquire acquire;
            return toNumpy(idx);
        },
        py::arg("features"), py::arg("m"));
    m.def(
        "random_selection",
        [](std::size_t n, std::size_t m, std::uint64_t seed) {
            return toNumpy(randomSelection(n, m, seed));
        },
        py::arg("n"), py::arg("m"), py::arg("seed"));
    m.def(
        "class_means",
        [](const FloatMatrix &features, const LabelVector &labels, std::size_t nbClasses) {
            checkMatrix(features, "features");
            if (labels.ndim() != 1 || labels.shape(0) != features.shape(0)) {
                throw std::invalid_argument(fmt::format(
                    "labels must be a vector of {} entries, one per feature row", features.shape(0)));
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
        [](const FloatMatrix &features, const FloatMatrix &means) {
            checkMatrix(features, "features");
            checkMatrix(means, "means");
            if (features.shape(1) != means.shape(1)) {
                throw std::invalid_argument(fmt::format(
                    "features have dimension {} but class means {}", features.shape(1), means.shape(1)));
            }
            py::gil_scoped_release release;
            auto pred = nmeClassify(features.data(), features.shape(0), features.shape(1),
                                    means.data(), means.shape(0));
            py::gil_scoped_acquire acquire;
            return toNumpy(pred);
        },
        py::arg("features"), py::arg("means"));

    py::class_<ExemplarMemory>(m, "ExemplarMemoryCore")
        .def(py::init([](const std::string &policy, std::size_t budget,
                         const std::vector<std::size_t> &sampleShape, const py::object &dtype) {
                 return ExemplarMemory(policyFrom(policy), budget, layoutFrom(sampleShape, dtype));
             }),
             py::arg("policy"), py::arg("budget"), py::arg("sample_shape"), py::arg("dtype"))
        .def("quotas", &ExemplarMemory::quotas, py::arg("n_classes"))
        .def("reduce", &ExemplarMemory::reduce, py::arg("n_classes_after"))
        .def("add_class",
             [](ExemplarMemory &mem, std::int64_t label, const py::array &samples) {
                 std::size_t count = 0;
                 const std::uint8_t *bytes = sampleBytes(samples, mem.layout(), count);
                 mem.addClass(label, bytes, count);
             },
             py::arg("label"), py::arg("samples"))
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
        .def(py::init([](std::size_t capacity, const std::vector<std::size_t> &sampleShape,
                         const py::object &dtype, std::uint64_t seed) {
                 return ReservoirMemory(capacity, layoutFrom(sampleShape, dtype), seed);
             }),
             py::arg("capacity"), py::arg("sample_shape"), py::arg("dtype"), py::arg("seed") = 0)
        .def("add_batch",
             [](ReservoirMemory &mem, const py::array &samples, const LabelVector &labels) {
                 std::size_t count = 0;
                 const std::uint8_t *bytes = sampleBytes(samples, mem.layout(), count);
                 if (labels.ndim() != 1 || static_cast<std::size_t>(labels.shape(0)) != count) {
                     throw std::invalid_argument(fmt::format(
                         "labels must be a vector of {} entries, one per sample", count));
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
