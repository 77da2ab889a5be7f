#include "aidge/incremental/loss/AttentionDistillation.hpp"

#include <stdexcept>

#include "aidge/incremental/loss/LossFunction.hpp"
#include "aidge/incremental/operator/AttentionDistillation.hpp"
#include "aidge/utils/Registrar.hpp"

namespace Aidge {
namespace incremental {

Tensor attentionDistillation(std::shared_ptr<Tensor> &features,
                             const std::shared_ptr<Tensor> &weights,
                             const std::shared_ptr<Tensor> &teacherMap,
                             float scaling,
                             bool accumulate,
                             float epsilon)
{
    if (!features || !weights || !teacherMap) {
        throw std::invalid_argument(
            "attention distillation: feature map, weights and teacher map must be tensors");
    }
    AttentionDistillation_Op op(epsilon);
    if (!accumulate && weights->impl()) {
        weights->grad()->zeros(); // runLossOperator zeroes the features' gradient only
    }
    return runLossOperator(
        op, {features, weights, teacherMap},
        features->impl() && Registrar<AttentionDistillation_Op>::exists({features->backend()}),
        scaling, accumulate, "attention distillation");
}

} // namespace incremental
} // namespace Aidge
