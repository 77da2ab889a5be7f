/**
 * What every loss operator of this plugin (Distillation, CrossEntropy,
 * AttentionDistillation) shares: a loss node is TERMINAL and seeds its own
 * output gradient.
 *
 * Why: SequentialScheduler::forward() (Aidge 0.10.1) zeroes every gradient of
 * the graph -- parameters and activations, with or without forward_dims --
 * before it runs the nodes. A loss node whose output gradient is not written
 * again after forward therefore back-propagated d loss / d loss = 0: every
 * parameter silently got a zero gradient. So the operator's forward() itself
 * writes d loss / d loss = 1 into its output gradient, after the scheduler
 * has zeroed it: `scheduler.forward(); scheduler.backward()` trains.
 *
 * Weighting (`scaling`): a caller that wants gamma * loss writes gamma into
 * the output gradient AFTER forward and before backward (the seed is a plain
 * value, overwriting it is the documented way: `out.grad` = gamma, e.g.
 * `out.grad.copy_from(Tensor([gamma]))`); the function forms
 * (aidge_incremental.loss.*) do exactly this with their `scaling` argument.
 *
 * Contract: a loss node must not feed another node. Aidge's backward kernels
 * ADD into their inputs' gradients, so a consumer would add its upstream
 * gradient to the seed (1 + upstream). An Aidge Operator cannot see its Node
 * or children, so this is documented rather than checked.
 */
#ifndef AIDGE_INCREMENTAL_OPERATOR_LOSSOPERATOR_H_
#define AIDGE_INCREMENTAL_OPERATOR_LOSSOPERATOR_H_

#include <memory>

#include "aidge/data/Tensor.hpp"

namespace Aidge {
namespace incremental {

/// d loss / d loss = 1 in the gradient of `loss` (any backend, any float type).
inline void seedLossGradient(const std::shared_ptr<Tensor> &loss)
{
    loss->grad()->ones();
}

} // namespace incremental
} // namespace Aidge

#endif // AIDGE_INCREMENTAL_OPERATOR_LOSSOPERATOR_H_
