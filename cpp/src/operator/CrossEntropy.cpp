#include "aidge/incremental/operator/CrossEntropy.hpp"

#include <stdexcept>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "aidge/incremental/operator/LossOperator.hpp"

namespace Aidge {
namespace incremental {

static void checkTwoD(const Tensor &x, const char *which)
{
    if (!x.impl()) {
        throw std::invalid_argument(
            fmt::format("cross-entropy: {} has no data (tensor without backend)", which));
    }
    if (x.nbDims() != 2 || x.dims()[0] == 0 || x.dims()[1] == 0) {
        throw std::invalid_argument(fmt::format(
            "cross-entropy: {} must be 2-D [batch, classes] and not empty, got shape {}",
            which, x.dims()));
    }
    if (x.dtype() != DataType::Float32 && x.dtype() != DataType::Float64) {
        throw std::invalid_argument(fmt::format(
            "cross-entropy: {} must be float32 or float64, got {}", which, x.dtype()));
    }
    if (!x.isContiguous()) {
        throw std::invalid_argument(fmt::format("cross-entropy: {} must be contiguous", which));
    }
}

CrossEntropyShape checkCrossEntropyInputs(const Tensor &prediction, const Tensor &target)
{
    checkTwoD(prediction, "prediction");
    checkTwoD(target, "target");
    if (prediction.dims() != target.dims()) {
        throw std::invalid_argument(fmt::format(
            "cross-entropy: prediction {} and target {} shapes differ", prediction.dims(),
            target.dims()));
    }
    if (prediction.dtype() != target.dtype()) {
        throw std::invalid_argument(fmt::format(
            "cross-entropy: prediction ({}) and target ({}) must have the same data type",
            prediction.dtype(), target.dtype()));
    }
    return CrossEntropyShape{prediction.dims()[0], prediction.dims()[1]};
}

void throwOnBadCrossEntropyData(const CrossEntropyDataCheck &check)
{
    if (check.nonFinite != 0) {
        throw std::invalid_argument(fmt::format(
            "cross-entropy: {} non-finite (NaN or inf) logits or targets", check.nonFinite));
    }
    if (check.negative != 0) {
        throw std::invalid_argument(fmt::format(
            "cross-entropy: {} negative targets; targets must be probabilities (>= 0)",
            check.negative));
    }
}

CrossEntropy_Op::CrossEntropy_Op()
    : OperatorTensorWithImpl(Type, {InputCategory::Data, InputCategory::Data}, 1)
{
}

CrossEntropy_Op::CrossEntropy_Op(const CrossEntropy_Op &op) : OperatorTensorWithImpl(op) {}

bool CrossEntropy_Op::forwardDims(const DataDependency & /*allowDataDependency*/)
{
    if (!inputsAssociated()) {
        return false;
    }
    checkCrossEntropyInputs(*getInput(0), *getInput(1));
    mOutputs[0]->resize({1});
    return true;
}

void CrossEntropy_Op::forward()
{
    OperatorTensorWithImpl::forward();
    seedLossGradient(mOutputs[0]);
}

std::shared_ptr<Node> CrossEntropy(const std::string &name)
{
    return std::make_shared<Node>(std::make_shared<CrossEntropy_Op>(), name);
}

} // namespace incremental
} // namespace Aidge
