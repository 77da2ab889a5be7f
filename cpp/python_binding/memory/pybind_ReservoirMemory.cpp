#include <cstdint>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "aidge/incremental/memory/ReservoirMemory.hpp"
#include "../utils/pybind_Arguments.hpp"

namespace py = pybind11;

namespace Aidge {
namespace incremental {

void init_ReservoirMemory(py::module &m)
{
    py::class_<ReservoirMemory>(m, "ReservoirMemoryCore")
        .def(py::init([](const py::object &capacity, const py::object &sampleShape,
                         const py::object &dtype, const py::object &seed, const py::object &extras) {
                 const char *fn = "ReservoirMemoryCore";
                 return ReservoirMemory(sizeArg(capacity, fn, "capacity", 1),
                                        layoutFrom(shapeArg(sampleShape, fn, "sample_shape"), dtype, fn),
                                        seedArg(seed, fn, "seed"),
                                        SampleExtras(extraWidthsArg(extras, fn, "extras")));
             }),
             py::arg("capacity"), py::arg("sample_shape"), py::arg("dtype"), py::arg("seed") = 0,
             py::arg("extras") = py::none(),
             "extras: {name: width} of the float32 arrays each sample carries (widths grow)")
        .def("add_batch",
             [](ReservoirMemory &mem, const py::object &samplesArg, const py::object &labelsArg,
                const py::object &extrasArg) {
                 std::size_t count = 0;
                 const py::array samples = arrayArg(samplesArg, "add_batch", "samples");
                 const std::uint8_t *bytes = sampleBytes(samples, mem.layout(), count, "add_batch", "samples",
                                                         samplesArg);
                 const LabelVector labels = labelVector(labelsArg, "add_batch", "labels");
                 if (static_cast<std::size_t>(labels.shape(0)) != count) {
                     throw py::value_error(fmt::format(
                         "add_batch: argument 'labels' must have {} entries, one per sample, got {}", count,
                         labels.shape(0)));
                 }
                 const ExtraInputs extras = extraInputsArg(extrasArg, mem.extras(), count, "add_batch", "extras");
                 coreCall("add_batch", {{"samples", samples}, {"labels", labelsArg}},
                          [&] { mem.addBatch(bytes, labels.data(), count, extras.inputs); });
             },
             py::arg("samples"), py::arg("labels"), py::arg("extras") = py::none())
        .def("extra", [](const ReservoirMemory &mem, const py::object &name) {
                 return extraArrayToNumpy(mem.extras(), name);
             }, py::arg("name"), "(values [n, width] float32, valid columns [n]): copies")
        .def_property_readonly("extra_widths", [](const ReservoirMemory &mem) {
            return extraWidthsToPy(mem.extras());
        })
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
        .def("save", [](const ReservoirMemory &mem, const py::object &path) { mem.save(pathArg(path, "save", "path")); },
             py::arg("path"))
        .def_static("load", [](const py::object &path) { return ReservoirMemory::load(pathArg(path, "load", "path")); },
                    py::arg("path"))
        .def("to_bytes", [](const ReservoirMemory &mem) {
            const auto bytes = mem.toBytes();
            return py::bytes(reinterpret_cast<const char *>(bytes.data()), bytes.size());
        })
        .def_static("from_bytes", [](const py::object &data, const py::object &source) {
            return ReservoirMemory::fromBytes(bytesArg(data, "from_bytes", "data"), strArg(source, "from_bytes", "source"));
        }, py::arg("data"), py::arg("source") = "<bytes>");
}

} // namespace incremental
} // namespace Aidge
