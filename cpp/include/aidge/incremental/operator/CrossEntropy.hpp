/**
 * Softmax cross-entropy as an Aidge operator.
 *
 * Inputs: logits s [B, C] and target probabilities y [B, C] (one-hot labels
 * or soft targets, y >= 0; rows need not sum to 1), same float type.
 * Output: the scalar loss {1}
 *     L = 1/B * sum_b -sum_j y_bj log softmax(s_b)_j,
 * computed with log-sum-exp, so it is finite for any finite logits (upstream
 * aidge_learning loss::CELoss 0.10.1 returns NaN once a logit exceeds ~88).
 *
 * Backward adds gradLoss * dL/ds = gradLoss * (softmax(s_b) * sum_j y_bj - y_b) / B
 * to the logits' gradient ((softmax - y)/B for rows summing to 1). The target
 * gets no gradient. A terminal loss node: see LossOperator.hpp for the seed.
 */
#ifndef AIDGE_INCREMENTAL_OPERATOR_CROSSENTROPY_H_
#define AIDGE_INCREMENTAL_OPERATOR_CROSSENTROPY_H_

#include <cstddef>
#include <memory>
#include <string>

#include "aidge/data/Tensor.hpp"
#include "aidge/graph/Node.hpp"
#include "aidge/operator/OperatorTensor.hpp"

namespace Aidge {
namespace incremental {

/// Shape of a validated cross-entropy problem.
struct CrossEntropyShape
{
    std::size_t batch;
    std::size_t classes;
};

/// Problems found in the data by the forward kernel (it raises nothing itself:
/// no exception may leave an OpenMP region).
struct CrossEntropyDataCheck
{
    std::size_t nonFinite = 0; ///< NaN/inf logits or targets
    std::size_t negative = 0;  ///< negative targets
};

/// Checks logits/targets; throws std::invalid_argument naming the problem.
CrossEntropyShape checkCrossEntropyInputs(const Tensor &prediction, const Tensor &target);

/// Raises std::invalid_argument when the forward kernel met bad data.
void throwOnBadCrossEntropyData(const CrossEntropyDataCheck &check);

class CrossEntropy_Op : public OperatorTensorWithImpl<CrossEntropy_Op> {
  public:
    static constexpr const char *const Type = "CrossEntropy";
    static constexpr const char *const InputsName[] = {"prediction", "target"};
    static constexpr const char *const OutputsName[] = {"loss"};

    CrossEntropy_Op();
    CrossEntropy_Op(const CrossEntropy_Op &op);

    /// Output is the scalar loss {1}; validates the inputs' shapes and types.
    bool forwardDims(const DataDependency &allowDataDependency = false) override;
    /// Runs the implementation, then seeds d loss / d loss = 1 (terminal loss node).
    void forward() override;
};

std::shared_ptr<Node> CrossEntropy(const std::string &name = "");

} // namespace incremental
} // namespace Aidge

#endif // AIDGE_INCREMENTAL_OPERATOR_CROSSENTROPY_H_
