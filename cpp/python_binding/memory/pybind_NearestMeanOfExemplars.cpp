#include <algorithm>
#include <cstdint>
#include <vector>

#include <fmt/format.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include "aidge/incremental/memory/NearestMeanOfExemplars.hpp"
#include "../utils/pybind_Arguments.hpp"

namespace py = pybind11;

namespace Aidge {
namespace incremental {

void init_NearestMeanOfExemplars(py::module &m)
{
    m.def(
        "class_means",
        [](const py::object &featuresArg, const py::object &labelsArg, const py::object &nbArg) {
            const FloatMatrix features = floatMatrix(featuresArg, "class_means", "features");
            const LabelVector labels = labelVector(labelsArg, "class_means", "labels");
            const std::size_t nbClasses = sizeArg(nbArg, "class_means", "n_classes", 1);
            if (nbClasses > static_cast<std::size_t>(features.shape(0))) {
                throw py::value_error(fmt::format("class_means: argument 'n_classes' must be an integer in [1, the "
                                                  "number of rows of argument 'features' = {}] (every class needs a "
                                                  "sample), got {}",
                                                  features.shape(0), describe(nbArg)));
            }
            if (labels.shape(0) != features.shape(0)) {
                throw py::value_error(fmt::format(
                    "class_means: argument 'labels' must have {} entries, one per feature row, got {}",
                    features.shape(0), labels.shape(0)));
            }
            const std::size_t d = features.shape(1);
            const auto means = coreCall("class_means", {{"features", featuresArg}, {"labels", labelsArg},
                                                         {"n_classes", nbArg}},
                                        [&] { return classMeans(features.data(), labels.data(), features.shape(0), d,
                                                                nbClasses); });
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
            const std::vector<std::int64_t> pred = coreCall(
                "nme_classify", {{"features", featuresArg}, {"means", meansArg}}, [&] {
                    py::gil_scoped_release release;
                    return nmeClassify(features.data(), features.shape(0), features.shape(1), means.data(),
                                       means.shape(0));
                });
            return toNumpy(pred);
        },
        py::arg("features"), py::arg("means"),
        "Index of the nearest class mean per row; -1 for an all-zero row (no direction).");
}

} // namespace incremental
} // namespace Aidge
