/**
 * Softmax cross-entropy as a function, in the style of aidge_learning's
 * loss::CELoss but computed with log-sum-exp: finite for any finite logits
 * (upstream CELoss 0.10.1 returns NaN once a logit exceeds ~88).
 */
#ifndef AIDGE_INCREMENTAL_LOSS_CROSSENTROPY_H_
#define AIDGE_INCREMENTAL_LOSS_CROSSENTROPY_H_

#include <memory>

#include "aidge/data/Tensor.hpp"

namespace Aidge {
namespace incremental {

/**
 * mean_b -sum_j y_bj log softmax(s_b)_j for logits s [B, C] and target
 * probabilities y [B, C] (one-hot labels or soft targets; rows need not sum
 * to 1). Returns a {1} tensor holding scaling * loss and sets
 * prediction->grad() to scaling * d loss / d s = scaling * (p sum_j y_bj - y) / B
 * (added to the existing gradient when accumulate is true).
 */
Tensor crossEntropy(std::shared_ptr<Tensor> &prediction,
                    const std::shared_ptr<Tensor> &target,
                    float scaling = 1.0f,
                    bool accumulate = false);

} // namespace incremental
} // namespace Aidge

#endif // AIDGE_INCREMENTAL_LOSS_CROSSENTROPY_H_
