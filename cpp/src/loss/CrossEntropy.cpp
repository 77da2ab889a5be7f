#include "aidge/incremental/loss/CrossEntropy.hpp"

#include <stdexcept>

#include "aidge/incremental/loss/LossFunction.hpp"
#include "aidge/incremental/operator/CrossEntropy.hpp"
#include "aidge/utils/Registrar.hpp"

namespace Aidge {
namespace incremental {

Tensor crossEntropy(std::shared_ptr<Tensor> &prediction, const std::shared_ptr<Tensor> &target,
                    float scaling, bool accumulate)
{
    if (!prediction || !target) {
        throw std::invalid_argument("cross-entropy: prediction and target must be tensors");
    }
    std::shared_ptr<Tensor> y = target;
    if (target->impl() && prediction->impl() && target->dtype() != prediction->dtype() &&
        (target->dtype() == DataType::Float32 || target->dtype() == DataType::Float64)) {
        // Targets are data, not parameters: read them in the logits' type.
        y = std::make_shared<Tensor>(target->clone());
        y->toDtype(prediction->dtype());
    }
    CrossEntropy_Op op;
    return runLossOperator(op, {prediction, y},
                           prediction->impl() &&
                               Registrar<CrossEntropy_Op>::exists({prediction->backend()}),
                           scaling, accumulate, "cross-entropy");
}

} // namespace incremental
} // namespace Aidge
