/**
 * Knowledge-distillation loss as an Aidge operator.
 *
 * Inputs: student logits [B, Cs] and teacher logits [B, Ct]; output: the scalar
 * loss, shape {1}. Only the first `n_old` logit columns of both are distilled
 * (the classes the teacher knows); `n_old == 0` means "every teacher column".
 *
 * Forms (see DistillationForm):
 *  - KL  (Hinton et al. 2015):  T^2 / B * sum_b KL( softmax(t_b/T) || softmax(s_b/T) )
 *  - BCE (Rebuffi et al. 2017, iCaRL):
 *        1 / B * sum_b sum_{j < n_old} BCE( sigmoid(s_bj/T), target = sigmoid(t_bj/T) )
 *    (T = 1 is iCaRL's original; sum over the distilled outputs, mean over the batch).
 *
 * Backward adds d loss / d student (times the output gradient) to the student's
 * gradient and leaves the teacher without gradient: the teacher is a fixed
 * target. A terminal loss node: forward seeds its output gradient with 1
 * (LossOperator.hpp says why and how to weight it).
 */
#ifndef AIDGE_INCREMENTAL_OPERATOR_DISTILLATION_H_
#define AIDGE_INCREMENTAL_OPERATOR_DISTILLATION_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "aidge/data/Tensor.hpp"
#include "aidge/graph/Node.hpp"
#include "aidge/operator/OperatorTensor.hpp"
#include "aidge/utils/StaticAttributes.hpp"
#include "aidge/utils/logger/EnumString.hpp"

namespace Aidge {
namespace incremental {

// fmt prints an enum through the format_as() it finds by argument-dependent
// lookup; Aidge's (EnumStrings names) sits in namespace Aidge, ours in
// Aidge::incremental: bring it here (Aidge's attribute printing needs it).
using Aidge::format_as;

enum class DistillationForm { KL, BCE };

/// Name of a form as used in Python and in attributes ("kl", "bce").
const char *distillationFormName(DistillationForm form);
/// Parse "kl" / "bce"; throws std::invalid_argument otherwise.
DistillationForm parseDistillationForm(const std::string &name);

/// Shape of a validated distillation problem.
struct DistillationShape
{
    std::size_t batch;
    std::size_t studentCols;
    std::size_t teacherCols;
    std::size_t nbOld; ///< resolved number of distilled columns (>= 1)
};

/**
 * Check student/teacher logits and attributes; throws std::invalid_argument
 * with a message naming the problem. Shared by the operator and the loss
 * function so both refuse the same inputs the same way.
 */
DistillationShape checkDistillationInputs(const Tensor &student,
                                          const Tensor &teacher,
                                          float temperature,
                                          std::uint32_t nbOld);

} // namespace incremental
} // namespace Aidge

namespace {
template <typename T> struct EnumStrings;
}

#define LIST_DISTILLATION_ATTR(X)          \
    X(Temperature, "temperature", float),  \
    X(NbOld, "n_old", std::uint32_t),      \
    X(Form, "form", Aidge::incremental::DistillationForm)

namespace Aidge {
namespace incremental {

class Distillation_Op : public OperatorTensorWithImpl<Distillation_Op> {
  public:
    static constexpr const char *const Type = "Distillation";
    static constexpr const char *const InputsName[] = {"student", "teacher"};
    static constexpr const char *const OutputsName[] = {"loss"};

    enum class Attr { GENERATE_LIST_ATTR_ENUM(LIST_DISTILLATION_ATTR) };

  private:
    using Attributes_ =
        StaticAttributes<Attr, GENERATE_LIST_ATTR_TYPE(LIST_DISTILLATION_ATTR)>;
    template <Attr e> using attr = typename Attributes_::template attr<e>;
    const std::shared_ptr<Attributes_> mAttributes;

  public:
    Distillation_Op() = delete;
    Distillation_Op(float temperature, std::uint32_t nbOld, DistillationForm form);
    Distillation_Op(const Distillation_Op &op);

    /// Output is the scalar loss {1}; validates the inputs' shapes and types.
    bool forwardDims(const DataDependency &allowDataDependency = false) override;
    /// Runs the implementation, then seeds d loss / d loss = 1 (terminal loss
    /// node, see LossOperator.hpp: without it the scheduler's zeroed gradient
    /// gave every parameter a zero gradient).
    void forward() override;

    std::shared_ptr<Attributes> attributes() const override { return mAttributes; }

    float &temperature() const noexcept
    {
        return mAttributes->getAttr<Attr::Temperature>();
    }
    std::uint32_t &nbOld() const noexcept
    {
        return mAttributes->getAttr<Attr::NbOld>();
    }
    DistillationForm &form() const noexcept
    {
        return mAttributes->getAttr<Attr::Form>();
    }
};

std::shared_ptr<Node> Distillation(float temperature = 2.0f,
                                   std::uint32_t nbOld = 0,
                                   DistillationForm form = DistillationForm::KL,
                                   const std::string &name = "");

} // namespace incremental
} // namespace Aidge

namespace {
template <> struct EnumStrings<Aidge::incremental::Distillation_Op::Attr>
{
    static const char *const data[];
};
constexpr const char *const EnumStrings<Aidge::incremental::Distillation_Op::Attr>::data[] = {
    GENERATE_LIST_ATTR_STR(LIST_DISTILLATION_ATTR)};
template <> struct EnumStrings<Aidge::incremental::DistillationForm>
{
    static const char *const data[];
};
constexpr const char *const EnumStrings<Aidge::incremental::DistillationForm>::data[] = {"kl", "bce"};
} // namespace

#undef LIST_DISTILLATION_ATTR

#endif // AIDGE_INCREMENTAL_OPERATOR_DISTILLATION_H_
