/**
 * The attention-distillation loss (LwM) as a function, in the style of
 * distillation(): runs AttentionDistillation_Op on the given tensors,
 * returns the value and sets the gradients of the student's feature map and
 * Grad-CAM weights.
 */
#ifndef AIDGE_INCREMENTAL_LOSS_ATTENTIONDISTILLATION_H_
#define AIDGE_INCREMENTAL_LOSS_ATTENTIONDISTILLATION_H_

#include <memory>

#include "aidge/data/Tensor.hpp"

namespace Aidge {
namespace incremental {

/**
 * L_AD between the student's Grad-CAM map (from its feature map [B,C,H,W] and
 * weights [B,C]) and the teacher's map [B,H,W] (see AttentionDistillation_Op).
 * Returns a {1} tensor holding scaling * L_AD, sets features->grad() to
 * scaling * dL_AD/dA (weights fixed) and weights->grad() to scaling *
 * dL_AD/dweights (features fixed), added to the existing gradients when
 * accumulate is true.
 */
Tensor attentionDistillation(std::shared_ptr<Tensor> &features,
                             const std::shared_ptr<Tensor> &weights,
                             const std::shared_ptr<Tensor> &teacherMap,
                             float scaling = 1.0f,
                             bool accumulate = false,
                             float epsilon = 1e-12f);

} // namespace incremental
} // namespace Aidge

#endif // AIDGE_INCREMENTAL_LOSS_ATTENTIONDISTILLATION_H_
