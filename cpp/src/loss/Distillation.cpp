#include "aidge/incremental/loss/Distillation.hpp"

#include <stdexcept>

#include "aidge/incremental/loss/LossFunction.hpp"
#include "aidge/utils/Registrar.hpp"

namespace Aidge {
namespace incremental {

Tensor distillation(std::shared_ptr<Tensor> &student,
                    const std::shared_ptr<Tensor> &teacher,
                    float temperature,
                    std::uint32_t nbOld,
                    DistillationForm form,
                    float scaling,
                    bool accumulate)
{
    if (!student || !teacher) {
        throw std::invalid_argument("distillation: student and teacher must be tensors");
    }
    Distillation_Op op(temperature, nbOld, form);
    return runLossOperator(op, {student, teacher},
                           student->impl() &&
                               Registrar<Distillation_Op>::exists({student->backend()}),
                           scaling, accumulate, "distillation");
}

} // namespace incremental
} // namespace Aidge
