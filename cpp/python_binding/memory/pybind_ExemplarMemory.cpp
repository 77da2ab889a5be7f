#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "aidge/incremental/memory/ExemplarMemory.hpp"
#include "../utils/pybind_Arguments.hpp"

namespace py = pybind11;

namespace Aidge {
namespace incremental {

namespace {

ExemplarMemory::Policy policyFrom(const py::object &policy)
{
    const std::string name = strArg(policy, "ExemplarMemoryCore", "policy");
    if (name == "total") {
        return ExemplarMemory::Policy::Total;
    }
    if (name == "per_class") {
        return ExemplarMemory::Policy::PerClass;
    }
    throw py::value_error(fmt::format("ExemplarMemoryCore: argument 'policy' must be 'total' or 'per_class', got {}",
                                      describe(policy)));
}

} // namespace

void init_ExemplarMemory(py::module &m)
{
    py::class_<ExemplarMemory>(m, "ExemplarMemoryCore")
        .def(py::init([](const py::object &policy, const py::object &budget,
                         const py::object &sampleShape, const py::object &dtype, const py::object &extras) {
                 const char *fn = "ExemplarMemoryCore";
                 return ExemplarMemory(policyFrom(policy), sizeArg(budget, fn, "budget", 1),
                                       layoutFrom(shapeArg(sampleShape, fn, "sample_shape"), dtype, fn),
                                       SampleExtras(extraWidthsArg(extras, fn, "extras")));
             }),
             py::arg("policy"), py::arg("budget"), py::arg("sample_shape"), py::arg("dtype"),
             py::arg("extras") = py::none(),
             "extras: {name: width} of the float32 arrays each exemplar carries (widths grow)")
        .def("quotas", [](const ExemplarMemory &mem, const py::object &n) {
                 const std::size_t count = sizeArg(n, "quotas", "n_classes");
                 return coreCall("quotas", {{"n_classes", n}}, [&] { return mem.quotas(count); });
             }, py::arg("n_classes"))
        .def("reduce", [](ExemplarMemory &mem, const py::object &n) {
                 const std::size_t count = sizeArg(n, "reduce", "n_classes_after");
                 coreCall("reduce", {{"n_classes_after", n}}, [&] { mem.reduce(count); });
             }, py::arg("n_classes_after"))
        .def("add_class",
             [](ExemplarMemory &mem, const py::object &label, const py::object &samplesArg,
                const py::object &extrasArg) {
                 std::size_t count = 0;
                 const std::int64_t l = intArg(label, "add_class", "label",
                                               std::numeric_limits<std::int64_t>::min(),
                                               std::numeric_limits<std::int64_t>::max());
                 const py::array samples = arrayArg(samplesArg, "add_class", "samples");
                 const std::uint8_t *bytes = sampleBytes(samples, mem.layout(), count, "add_class", "samples",
                                                         samplesArg);
                 const ExtraInputs extras = extraInputsArg(extrasArg, mem.extras(), count, "add_class", "extras");
                 coreCall("add_class", {{"label", label}, {"samples", samples}},
                          [&] { mem.addClass(l, bytes, count, extras.inputs); });
             },
             py::arg("label"), py::arg("samples"), py::arg("extras") = py::none())
        .def("add_classes",
             [](ExemplarMemory &mem, const py::object &labelsArg, const py::object &samplesArg,
                const py::object &extrasArg) {
                 const py::list labels = sequenceArg(labelsArg, "add_classes", "labels");
                 const py::list samples = sequenceArg(samplesArg, "add_classes", "samples");
                 if (labels.size() != samples.size()) {
                     throw py::value_error(fmt::format("add_classes: arguments 'labels' and 'samples' differ in "
                                                       "length: {} labels, {} sample arrays",
                                                       labels.size(), samples.size()));
                 }
                 if (!extrasArg.is_none() && (!py::isinstance<py::list>(extrasArg) ||
                                              py::len(extrasArg) != labels.size())) {
                     throw py::value_error(fmt::format("add_classes: argument 'extras' must be None or a list with "
                                                       "one mapping {{name: array}} per class ({}), got {}",
                                                       labels.size(), describe(extrasArg)));
                 }
                 std::vector<std::int64_t> ls;
                 std::vector<const std::uint8_t *> ptrs;
                 std::vector<std::size_t> counts;
                 std::vector<py::array> keep; // the arrays outlive the raw pointers
                 std::vector<ExtraInputs> extras;
                 std::vector<std::vector<ExtraInput>> inputs;
                 for (std::size_t i = 0; i < labels.size(); ++i) {
                     ls.push_back(intArg(labels[i], "add_classes", "labels",
                                         std::numeric_limits<std::int64_t>::min(),
                                         std::numeric_limits<std::int64_t>::max()));
                     const std::string item = fmt::format("samples[{}]", i);
                     keep.push_back(arrayArg(samples[i], "add_classes", item.c_str()));
                     std::size_t count = 0;
                     ptrs.push_back(sampleBytes(keep.back(), mem.layout(), count, "add_classes", item.c_str(),
                                                samples[i]));
                     counts.push_back(count);
                     const py::object classExtras = extrasArg.is_none()
                                                        ? py::object(py::none())
                                                        : py::object(py::list(extrasArg)[i]);
                     extras.push_back(extraInputsArg(classExtras, mem.extras(), count, "add_classes", "extras"));
                     inputs.push_back(extras.back().inputs);
                 }
                 coreCall("add_classes", {{"labels", labels}, {"samples", samples}},
                          [&] { mem.addClasses(ls, ptrs, counts, inputs); });
             },
             py::arg("labels"), py::arg("samples"), py::arg("extras") = py::none(),
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
        .def("extra", [](const ExemplarMemory &mem, const py::object &name) {
                 return extraArrayToNumpy(mem.extras(), name);
             }, py::arg("name"), "(values [n, width] float32, valid columns [n]): copies")
        .def_property_readonly("extra_widths", [](const ExemplarMemory &mem) {
            return extraWidthsToPy(mem.extras());
        })
        .def("__len__", &ExemplarMemory::size)
        .def_property_readonly("nbytes", &ExemplarMemory::nbytes)
        .def("samples", [](const ExemplarMemory &mem) {
            return samplesView(mem.buffer(), mem.size(), mem.layout());
        })
        .def("save", [](const ExemplarMemory &mem, const py::object &path) { mem.save(pathArg(path, "save", "path")); },
             py::arg("path"))
        .def_static("load", [](const py::object &path) { return ExemplarMemory::load(pathArg(path, "load", "path")); },
                    py::arg("path"))
        .def("to_bytes", [](const ExemplarMemory &mem) {
            const auto bytes = mem.toBytes();
            return py::bytes(reinterpret_cast<const char *>(bytes.data()), bytes.size());
        })
        .def_static("from_bytes", [](const py::object &data, const py::object &source) {
            return ExemplarMemory::fromBytes(bytesArg(data, "from_bytes", "data"), strArg(source, "from_bytes", "source"));
        }, py::arg("data"), py::arg("source") = "<bytes>");
}

} // namespace incremental
} // namespace Aidge
