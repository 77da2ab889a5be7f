/**
 * The distillation loss as a function, in the style of aidge_learning's
 * loss::CELoss: returns the loss value and sets the student's gradient, so it
 * drops into a plain training loop (set grad, scheduler.backward(), update).
 */
#ifndef AIDGE_INCREMENTAL_LOSS_DISTILLATION_H_
#define AIDGE_INCREMENTAL_LOSS_DISTILLATION_H_

#include <cstdint>
#include <memory>

#include "aidge/data/Tensor.hpp"
#include "aidge/incremental/operator/Distillation.hpp"

namespace Aidge {
namespace incremental {

/**
 * Distillation loss between student and teacher logits (see Distillation_Op
 * for the two forms). Returns a {1} tensor holding scaling * loss and sets
 * student->grad() to scaling * d loss / d student; with accumulate=true the
 * gradient is added to the existing one instead (to compose objectives).
 * The teacher's gradient is left alone.
 */
Tensor distillation(std::shared_ptr<Tensor> &student,
                    const std::shared_ptr<Tensor> &teacher,
                    float temperature = 2.0f,
                    std::uint32_t nbOld = 0,
                    DistillationForm form = DistillationForm::KL,
                    float scaling = 1.0f,
                    bool accumulate = false);

} // namespace incremental
} // namespace Aidge

#endif // AIDGE_INCREMENTAL_LOSS_DISTILLATION_H_
