/**
 * Attention-distillation loss L_AD of Learning without Memorizing (Dhar et
 * al., CVPR 2019, arXiv 1811.08051, Eq. 3) as an Aidge operator.
 *
 * Inputs:
 *   0 "student_features"  A_s [B, C, H, W]  the student's tapped feature map;
 *   1 "student_weights"   alpha_s [B, C]    its Grad-CAM weights (per sample,
 *                                           per channel);
 *   2 "teacher_map"       Q_t [B, H, W]     the teacher's Grad-CAM map.
 * Output: the scalar loss {1}. Per sample b, with z = sum_c alpha_bc A_bc (H*W),
 *   q = ReLU(z),  u = q / max(||q||_2, eps),  v = Q_t,b / max(||Q_t,b||_2, eps),
 *   L_b = ||u - v||_1,   L = mean_b L_b.
 *
 * Why the teacher enters as its map and not as (A_t, alpha_t): the teacher is a
 * fixed target (no gradient), its map is all the loss needs of it, it is
 * computed once per batch by Grad-CAM anyway, and it may have another channel
 * count than the student (only H, W must agree).
 *
 * Zero maps: ReLU can zero a whole map (z <= 0 everywhere). The normalisation
 * is max(||q||, eps) (eps = 1e-12 by default, torch.nn.functional.normalize's
 * definition, which the differentiable re-implementations use), so a zero map
 * normalises to the zero vector -- defined and finite -- and L_b is then the
 * other map's normalised L1 mass. Below eps the map is scaled by 1/eps.
 *
 * Backward: the partial derivatives with respect to BOTH student inputs, each
 * at the other fixed. With s = sign(u - v) (sign(0) = 0, the subgradient
 * torch.abs uses) and
 *   gz_j = gradLoss / B * 1[z_j > 0] * g_j,
 *   g = (s - u (s.u)) / ||q||   if ||q|| > eps,   s / eps otherwise,
 * it adds alpha_bc * gz_j to dA_s[b, c, j] and sum_j A_bcj * gz_j to
 * dalpha_s[b, c]. The teacher map gets no gradient. alpha_s is a function of
 * the network (the mean of dy_b/dA over the pixels, Grad-CAM); the caller
 * carries dL/dalpha on to the parameters it depends on -- the weights of the
 * layers above A (aidge_incremental.gradcam.grad_cam_weights_vjp): for layers
 * that are piecewise linear in A (ReLU, max-pooling, convolutions, FC, global
 * average pooling), dalpha/dA is zero almost everywhere, but dalpha/dW_above
 * is not, and that first-order term is as large as the one through A
 * (Learning without Memorizing's L_AD, docs/methods.md).
 *
 * A terminal loss node: forward seeds its output gradient with 1 (see
 * LossOperator.hpp for why and how to weight it, e.g. by gamma).
 */
#ifndef AIDGE_INCREMENTAL_OPERATOR_ATTENTIONDISTILLATION_H_
#define AIDGE_INCREMENTAL_OPERATOR_ATTENTIONDISTILLATION_H_

#include <cstddef>
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

/// Shape of a validated attention-distillation problem.
struct AttentionDistillationShape
{
    std::size_t batch;
    std::size_t channels;
    std::size_t pixels; ///< H * W
};

/**
 * Checks A_s [B,C,H,W], alpha [B,C], Q_t [B,H,W] and epsilon; throws
 * std::invalid_argument naming the problem (shared by operator and function).
 */
AttentionDistillationShape checkAttentionDistillationInputs(const Tensor &features,
                                                            const Tensor &weights,
                                                            const Tensor &teacherMap,
                                                            float epsilon);

} // namespace incremental
} // namespace Aidge

namespace {
template <typename T> struct EnumStrings;
}

#define LIST_ATTENTIONDISTILLATION_ATTR(X) X(Epsilon, "epsilon", float)

namespace Aidge {
namespace incremental {

class AttentionDistillation_Op : public OperatorTensorWithImpl<AttentionDistillation_Op> {
  public:
    static constexpr const char *const Type = "AttentionDistillation";
    static constexpr const char *const InputsName[] = {"student_features", "student_weights",
                                                       "teacher_map"};
    static constexpr const char *const OutputsName[] = {"loss"};

    enum class Attr { GENERATE_LIST_ATTR_ENUM(LIST_ATTENTIONDISTILLATION_ATTR) };

  private:
    using Attributes_ =
        StaticAttributes<Attr, GENERATE_LIST_ATTR_TYPE(LIST_ATTENTIONDISTILLATION_ATTR)>;
    template <Attr e> using attr = typename Attributes_::template attr<e>;
    const std::shared_ptr<Attributes_> mAttributes;

  public:
    explicit AttentionDistillation_Op(float epsilon = 1e-12f);
    AttentionDistillation_Op(const AttentionDistillation_Op &op);

    /// Output is the scalar loss {1}; validates the inputs' shapes and types.
    bool forwardDims(const DataDependency &allowDataDependency = false) override;
    /// Runs the implementation, then seeds d loss / d loss = 1 (terminal loss node).
    void forward() override;

    std::shared_ptr<Attributes> attributes() const override { return mAttributes; }

    float &epsilon() const noexcept { return mAttributes->getAttr<Attr::Epsilon>(); }
};

std::shared_ptr<Node> AttentionDistillation(float epsilon = 1e-12f, const std::string &name = "");

} // namespace incremental
} // namespace Aidge

namespace {
template <> struct EnumStrings<Aidge::incremental::AttentionDistillation_Op::Attr>
{
    static const char *const data[];
};
constexpr const char *const EnumStrings<Aidge::incremental::AttentionDistillation_Op::Attr>::data[] = {
    GENERATE_LIST_ATTR_STR(LIST_ATTENTIONDISTILLATION_ATTR)};
} // namespace

#undef LIST_ATTENTIONDISTILLATION_ATTR

#endif // AIDGE_INCREMENTAL_OPERATOR_ATTENTIONDISTILLATION_H_
