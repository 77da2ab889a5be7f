#include "aidge/incremental/operator/AttentionDistillation.hpp"

#include <cmath>
#include <stdexcept>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "aidge/incremental/operator/LossOperator.hpp"

namespace Aidge {
namespace incremental {

static void checkEpsilon(float epsilon)
{
    if (!(epsilon > 0.0f) || !std::isfinite(epsilon)) {
        throw std::invalid_argument(fmt::format(
            "attention distillation: epsilon must be a finite value > 0, got {}", epsilon));
    }
}

static void checkMap(const Tensor &x, const char *which, std::size_t nbDims, const char *layout)
{
    if (!x.impl()) {
        throw std::invalid_argument(fmt::format(
            "attention distillation: {} has no data (tensor without backend)", which));
    }
    if (x.nbDims() != nbDims) {
        throw std::invalid_argument(fmt::format(
            "attention distillation: {} must be {}-D {}, got shape {}", which, nbDims, layout,
            x.dims()));
    }
    for (const auto d : x.dims()) {
        if (d == 0) {
            throw std::invalid_argument(fmt::format(
                "attention distillation: {} is empty (shape {})", which, x.dims()));
        }
    }
    if (x.dtype() != DataType::Float32 && x.dtype() != DataType::Float64) {
        throw std::invalid_argument(fmt::format(
            "attention distillation: {} must be float32 or float64, got {}", which, x.dtype()));
    }
    if (!x.isContiguous()) {
        throw std::invalid_argument(
            fmt::format("attention distillation: {} must be contiguous", which));
    }
}

AttentionDistillationShape checkAttentionDistillationInputs(const Tensor &features,
                                                            const Tensor &weights,
                                                            const Tensor &teacherMap,
                                                            float epsilon)
{
    checkEpsilon(epsilon);
    checkMap(features, "student feature map", 4, "[batch, channels, height, width]");
    checkMap(weights, "student Grad-CAM weights", 2, "[batch, channels]");
    checkMap(teacherMap, "teacher map", 3, "[batch, height, width]");
    const auto &a = features.dims();
    if (weights.dims()[0] != a[0] || weights.dims()[1] != a[1]) {
        throw std::invalid_argument(fmt::format(
            "attention distillation: Grad-CAM weights {} do not match the student feature "
            "map {} (expected [{}, {}])",
            weights.dims(), a, a[0], a[1]));
    }
    const auto &q = teacherMap.dims();
    if (q[0] != a[0] || q[1] != a[2] || q[2] != a[3]) {
        throw std::invalid_argument(fmt::format(
            "attention distillation: teacher map {} and student feature map {} have "
            "different shapes (expected [{}, {}, {}])",
            q, a, a[0], a[2], a[3]));
    }
    if (weights.dtype() != features.dtype() || teacherMap.dtype() != features.dtype()) {
        throw std::invalid_argument(fmt::format(
            "attention distillation: feature map ({}), weights ({}) and teacher map ({}) "
            "must have the same data type",
            features.dtype(), weights.dtype(), teacherMap.dtype()));
    }
    return AttentionDistillationShape{a[0], a[1], a[2] * a[3]};
}

AttentionDistillation_Op::AttentionDistillation_Op(float epsilon)
    : OperatorTensorWithImpl(Type,
                             {InputCategory::Data, InputCategory::Data, InputCategory::Data},
                             1),
      mAttributes(std::make_shared<Attributes_>(attr<Attr::Epsilon>(epsilon)))
{
    checkEpsilon(epsilon);
}

AttentionDistillation_Op::AttentionDistillation_Op(const AttentionDistillation_Op &op)
    : OperatorTensorWithImpl(op), mAttributes(std::make_shared<Attributes_>(*op.mAttributes))
{
}

bool AttentionDistillation_Op::forwardDims(const DataDependency & /*allowDataDependency*/)
{
    if (!inputsAssociated()) {
        return false;
    }
    checkAttentionDistillationInputs(*getInput(0), *getInput(1), *getInput(2), epsilon());
    mOutputs[0]->resize({1});
    return true;
}

void AttentionDistillation_Op::forward()
{
    OperatorTensorWithImpl::forward();
    seedLossGradient(mOutputs[0]);
}

std::shared_ptr<Node> AttentionDistillation(float epsilon, const std::string &name)
{
    return std::make_shared<Node>(std::make_shared<AttentionDistillation_Op>(epsilon), name);
}

} // namespace incremental
} // namespace Aidge
