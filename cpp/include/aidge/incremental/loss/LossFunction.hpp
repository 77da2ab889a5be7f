/**
 * The function forms of the losses (crossEntropy, distillation,
 * attentionDistillation) run their OPERATOR on the tensors they are
 * given: the operator's implementation for the tensors' backend computes the
 * value and the gradient, so a function form runs wherever its tensors live
 * (the CPU kernels here, a CUDA kernel once one is registered for "cuda").
 */
#ifndef AIDGE_INCREMENTAL_LOSS_LOSSFUNCTION_H_
#define AIDGE_INCREMENTAL_LOSS_LOSSFUNCTION_H_

#include <memory>
#include <vector>

#include "aidge/data/Tensor.hpp"
#include "aidge/operator/OperatorTensor.hpp"

namespace Aidge {
namespace incremental {

/**
 * Runs the loss operator `op` on `inputs` (input 0 is the one that receives
 * a gradient) on input 0's backend:
 *  - checks that every input has data, on the same backend and device
 *    (`hasImpl`: whether the operator is registered for that backend);
 *  - forward, then writes `scaling` into the output gradient and runs
 *    backward, which ADDS scaling * d loss / d input0 to input0->grad()
 *    (after zeroing it unless `accumulate`);
 *  - returns a {1} tensor on that backend holding scaling * loss.
 * `what` names the loss in error messages.
 */
Tensor runLossOperator(OperatorTensor &op,
                       const std::vector<std::shared_ptr<Tensor>> &inputs,
                       bool hasImpl,
                       float scaling,
                       bool accumulate,
                       const char *what);

} // namespace incremental
} // namespace Aidge

#endif // AIDGE_INCREMENTAL_LOSS_LOSSFUNCTION_H_
