#include "aidge/incremental/loss/LossFunction.hpp"

#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

#include <fmt/format.h>

#include "aidge/utils/ArrayHelpers.hpp"

namespace Aidge {
namespace incremental {

Tensor runLossOperator(OperatorTensor &op,
                       const std::vector<std::shared_ptr<Tensor>> &inputs,
                       bool hasImpl,
                       float scaling,
                       bool accumulate,
                       const char *what)
{
    if (!std::isfinite(scaling)) {
        throw std::invalid_argument(
            fmt::format("{}: scaling must be finite, got {}", what, scaling));
    }
    for (std::size_t i = 0; i < inputs.size(); ++i) {
        if (!inputs[i] || !inputs[i]->impl()) {
            throw std::invalid_argument(fmt::format(
                "{}: input {} has no data (tensor without backend)", what, i));
        }
    }
    const std::string backend = inputs[0]->backend();
    const DeviceIdx_t device = inputs[0]->device();
    for (const auto &input : inputs) {
        if (input->backend() != backend || input->device() != device) {
            throw std::invalid_argument(fmt::format(
                "{}: all tensors must be on the same backend and device (found '{}' "
                "device {} and '{}' device {})",
                what, backend, device, input->backend(), input->device()));
        }
    }
    if (!hasImpl) {
        throw std::invalid_argument(fmt::format(
            "{}: no implementation registered for backend '{}' (import the "
            "plugin that provides it)",
            what, backend));
    }
    for (std::size_t i = 0; i < inputs.size(); ++i) {
        op.associateInput(static_cast<IOIndex_t>(i), inputs[i]);
    }
    op.setDataType(inputs[0]->dtype());
    op.setBackend(backend, device);
    op.forwardDims(); // validates shapes and types, with messages naming the problem
    op.forward();

    // The value, read on the host, times `scaling`; returned on the inputs' backend.
    std::shared_ptr<Tensor> fallback;
    const Tensor &host =
        op.getOutput(0)->refCastFrom(fallback, DataType::Float64, "cpu");
    const double value = static_cast<const double *>(
        host.impl()->hostPtr(host.implOffset()))[0];
    // Finite inputs can still give a loss beyond the tensors' float range (a tiny
    // distillation temperature): refuse it before any gradient is touched, rather
    // than return inf, or NaN once multiplied by a zero scaling.
    const double limit = inputs[0]->dtype() == DataType::Float64 ? std::numeric_limits<double>::max()
                                                                 : std::numeric_limits<float>::max();
    if (!std::isfinite(value) || std::fabs(value * static_cast<double>(scaling)) > limit) {
        throw std::invalid_argument(fmt::format(
            "{}: the loss ({:g}, times scaling {:g}) overflows {}: a temperature or scaling this "
            "extreme is out of the loss's range",
            what, value, scaling, inputs[0]->dtype() == DataType::Float64 ? "float64" : "float32"));
    }
    Tensor result(Array1D<double, 1>{{value * static_cast<double>(scaling)}});
    result.toDtype(inputs[0]->dtype());
    result.toBackend(backend, device);

    const std::shared_ptr<Tensor> grad = inputs[0]->grad();
    if (!accumulate) {
        grad->zeros();
    }
    Tensor seed(Array1D<double, 1>{{static_cast<double>(scaling)}});
    op.getOutput(0)->grad()->copyCastFrom(seed);
    op.backward();
    return result;
}

} // namespace incremental
} // namespace Aidge
