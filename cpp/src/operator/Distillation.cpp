#include "aidge/incremental/operator/Distillation.hpp"

#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

#include <fmt/format.h>

#include "aidge/data/Tensor.hpp"
#include "aidge/graph/Node.hpp"
#include "aidge/incremental/operator/LossOperator.hpp"

namespace Aidge {
namespace incremental {

const char *distillationFormName(DistillationForm form)
{
    return EnumStrings<DistillationForm>::data[static_cast<int>(form)];
}

DistillationForm parseDistillationForm(const std::string &name)
{
    if (name == "kl") {
        return DistillationForm::KL;
    }
    if (name == "bce") {
        return DistillationForm::BCE;
    }
    throw std::invalid_argument(fmt::format(
        "distillation form must be 'kl' or 'bce', got '{}'", name));
}

static void checkTemperature(float temperature)
{
    // A subnormal temperature is refused too: 1/T would overflow float32.
    if (!(temperature >= std::numeric_limits<float>::min()) || !std::isfinite(temperature)) {
        throw std::invalid_argument(fmt::format(
            "distillation temperature must be a finite value >= {:g} (a normal float32), got {:g}",
            std::numeric_limits<float>::min(), temperature));
    }
}

static void checkLogits(const Tensor &x, const char *which)
{
    if (!x.impl()) {
        throw std::invalid_argument(
            fmt::format("{} logits have no data (tensor without backend)", which));
    }
    if (x.nbDims() != 2) {
        throw std::invalid_argument(fmt::format(
            "{} logits must be 2-D [batch, classes], got shape {}", which, x.dims()));
    }
    if (x.dtype() != DataType::Float32 && x.dtype() != DataType::Float64) {
        throw std::invalid_argument(fmt::format(
            "{} logits must be float32 or float64, got {}", which, x.dtype()));
    }
    if (!x.isContiguous()) {
        throw std::invalid_argument(fmt::format("{} logits must be contiguous", which));
    }
    if (x.dims()[0] == 0) {
        throw std::invalid_argument(fmt::format("{} logits: empty batch", which));
    }
    if (x.dims()[1] == 0) {
        throw std::invalid_argument(fmt::format("{} logits have no class column", which));
    }
}

DistillationShape checkDistillationInputs(const Tensor &student,
                                          const Tensor &teacher,
                                          float temperature,
                                          std::uint32_t nbOld)
{
    checkTemperature(temperature);
    checkLogits(student, "student");
    checkLogits(teacher, "teacher");
    if (student.dtype() != teacher.dtype()) {
        throw std::invalid_argument(fmt::format(
            "student ({}) and teacher ({}) logits must have the same data type",
            student.dtype(), teacher.dtype()));
    }
    if (student.dims()[0] != teacher.dims()[0]) {
        throw std::invalid_argument(fmt::format(
            "batch size mismatch: student logits {} vs teacher logits {}",
            student.dims(), teacher.dims()));
    }
    DistillationShape shape{student.dims()[0], student.dims()[1], teacher.dims()[1],
                            nbOld == 0 ? teacher.dims()[1] : std::size_t{nbOld}};
    if (shape.nbOld > shape.teacherCols || shape.nbOld > shape.studentCols) {
        throw std::invalid_argument(fmt::format(
            "n_old = {} out of range: student has {} and teacher {} logit columns "
            "(the distilled columns must exist in both)",
            shape.nbOld, shape.studentCols, shape.teacherCols));
    }
    return shape;
}

Distillation_Op::Distillation_Op(float temperature,
                                 std::uint32_t nbOld,
                                 DistillationForm form)
    : OperatorTensorWithImpl(Type, {InputCategory::Data, InputCategory::Data}, 1),
      mAttributes(std::make_shared<Attributes_>(attr<Attr::Temperature>(temperature),
                                                attr<Attr::NbOld>(nbOld),
                                                attr<Attr::Form>(form)))
{
    checkTemperature(temperature);
}

Distillation_Op::Distillation_Op(const Distillation_Op &op)
    : OperatorTensorWithImpl(op),
      mAttributes(std::make_shared<Attributes_>(*op.mAttributes))
{
}

bool Distillation_Op::forwardDims(const DataDependency & /*allowDataDependency*/)
{
    if (!inputsAssociated()) {
        return false;
    }
    checkDistillationInputs(*getInput(0), *getInput(1), temperature(), nbOld());
    mOutputs[0]->resize({1});
    return true;
}

void Distillation_Op::forward()
{
    OperatorTensorWithImpl::forward();
    seedLossGradient(mOutputs[0]);
}

std::shared_ptr<Node> Distillation(float temperature,
                                   std::uint32_t nbOld,
                                   DistillationForm form,
                                   const std::string &name)
{
    return std::make_shared<Node>(
        std::make_shared<Distillation_Op>(temperature, nbOld, form), name);
}

} // namespace incremental
} // namespace Aidge
