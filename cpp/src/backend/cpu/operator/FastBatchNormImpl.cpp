#include "aidge/incremental/backend/cpu/operator/FastBatchNormImpl.hpp"

#include <memory>
#include <stdexcept>

#include <fmt/format.h>

#include "aidge/incremental/backend/cpu/Accelerate.hpp"
#include "aidge/incremental/backend/cpu/FastKernelRegistry.hpp"
#include "aidge/incremental/backend/cpu/operator/FastBatchNormImpl_kernels.hpp"
#include "aidge/incremental/backend/cpu/operator/FastElementwiseImpl_kernels.hpp"
#include "aidge/operator/BatchNorm.hpp"
#include "aidge/operator/ReLU.hpp"

#include "aidge/utils/Registrar.hpp"

namespace Aidge {
namespace incremental {
namespace {

struct BNShape {
    int N, C, HW;
};

BNShape bnShape(const BatchNorm_Op<2> &op)
{
    const auto &x = op.getInput(0)->dims();
    const auto &y = op.getOutput(0)->dims();
    if (x.size() != 4 || y != x) {
        throw std::runtime_error(fmt::format(
            "FastBatchNorm2D: unexpected shapes input {} output {}", x, y));
    }
    for (IOIndex_t i = 1; i < 5; ++i) {
        if (!op.getInput(i) || op.getInput(i)->size() != x[1]) {
            throw std::runtime_error(fmt::format(
                "FastBatchNorm2D: input #{} must hold {} values (one per channel)", i, x[1]));
        }
    }
    return {static_cast<int>(x[0]), static_cast<int>(x[1]), static_cast<int>(x[2] * x[3])};
}

/// BatchNorm forward of `op` into `out` (its own output, or the fused ReLU's
/// output with `relu`), recording what it used in `state`.
void runForward(const BatchNorm_Op<2> &op, const std::shared_ptr<Tensor> &out, bool relu,
                BatchNormForwardState &state, const char *name)
{
    const BNShape s = bnShape(op);
    if (out->dims() != op.getInput(0)->dims()) {
        throw std::runtime_error(fmt::format("{}: output {} differs from input {}", name, out->dims(),
                                             op.getInput(0)->dims()));
    }
    // Read at every call, so that the model switches train/eval without
    // re-attaching implementations.
    const bool training = op.trainingMode();
    if (training && static_cast<long>(s.N) * s.HW < 2) {
        throw std::runtime_error(fmt::format(
            "{}: training mode needs more than one value per channel "
            "(batch x height x width >= 2) to estimate a variance", name));
    }
    state.mean.assign(s.C, 0.0f);
    state.invStd.assign(s.C, 0.0f);
    fastBatchNormForward(s.N, s.C, s.HW, training, op.momentum(), op.epsilon(),
                         floatPtr(op.getInput(0), name, "input"), floatPtr(op.getInput(1), name, "scale"),
                         floatPtr(op.getInput(2), name, "shift"), floatPtr(op.getInput(3), name, "running mean"),
                         floatPtr(op.getInput(4), name, "running variance"), floatPtr(out, name, "output"),
                         state.mean.data(), state.invStd.data(), relu);
    state.training = training;
    state.done = true;
}

/// Backward of the forward `state` recorded; `out` holds the gradient (and,
/// with `relu`, the fused forward's output that masks it).
void runBackward(const BatchNorm_Op<2> &op, const std::shared_ptr<Tensor> &out, bool relu,
                 const BatchNormForwardState &state, const char *name)
{
    const BNShape s = bnShape(op);
    if (!state.done || static_cast<int>(state.mean.size()) != s.C) {
        throw std::runtime_error(fmt::format("{}: backward() called before forward()", name));
    }
    fastBatchNormBackward(s.N, s.C, s.HW, state.training, floatPtr(op.getInput(0), name, "input"),
                          floatPtr(op.getInput(1), name, "scale"), state.mean.data(), state.invStd.data(),
                          floatPtr(out->grad(), name, "output gradient"),
                          floatPtr(op.getInput(0)->grad(), name, "input gradient"),
                          floatPtr(op.getInput(1)->grad(), name, "scale gradient"),
                          floatPtr(op.getInput(2)->grad(), name, "shift gradient"),
                          relu ? floatPtr(out, name, "fused ReLU output") : nullptr);
}

/// The joint decision of the pair (see FastBatchNormImpl.hpp).
bool batchNormReluRunFused(const std::shared_ptr<Operator> &bnOp, const std::shared_ptr<Operator> &reluOp)
{
    const auto bn = std::dynamic_pointer_cast<BatchNorm_Op<2>>(bnOp);
    const auto relu = std::dynamic_pointer_cast<ReLU_Op>(reluOp);
    return bn && relu && std::dynamic_pointer_cast<FastBatchNormReLUImpl>(bn->getImpl()) &&
           std::dynamic_pointer_cast<FastReLUAfterBatchNormImpl>(relu->getImpl()) &&
           relu->getInput(0) == bn->getOutput(0) && isCpuFloat32(relu->getOutput(0)) &&
           relu->getOutput(0)->dims() == bn->getInput(0)->dims();
}

} // namespace

void FastBatchNorm2DImpl::fastForward()
{
    const auto &op = static_cast<const BatchNorm_Op<2> &>(mOp);
    runForward(op, op.getOutput(0), false, mState, "FastBatchNorm2D");
}

void FastBatchNorm2DImpl::fastBackward()
{
    const auto &op = static_cast<const BatchNorm_Op<2> &>(mOp);
    runBackward(op, op.getOutput(0), false, mState, "FastBatchNorm2D");
}

std::shared_ptr<OperatorImpl> FastBatchNorm2DImpl::makeAidgeImpl() const
{
    return Registrar<BatchNorm_Op<2>>::create("cpu")(static_cast<const BatchNorm_Op<2> &>(mOp));
}

bool FastBatchNormReLUImpl::fused() const
{
    return batchNormReluRunFused(std::const_pointer_cast<Operator>(mOp.shared_from_this()), mReLU.lock());
}

void FastBatchNormReLUImpl::fastForward()
{
    const auto &op = static_cast<const BatchNorm_Op<2> &>(mOp);
    mFusedForward = fused();
    const auto relu = mReLU.lock();
    runForward(op, mFusedForward ? std::static_pointer_cast<OperatorTensor>(relu)->getOutput(0) : op.getOutput(0),
               mFusedForward, mState, "FastBatchNorm2D+ReLU");
}

void FastBatchNormReLUImpl::fastBackward()
{
    const auto &op = static_cast<const BatchNorm_Op<2> &>(mOp);
    if (mFusedForward != fused()) {
        throw std::runtime_error("FastBatchNorm2D+ReLU: the pair was changed between forward() and backward()");
    }
    const auto relu = mReLU.lock();
    runBackward(op, mFusedForward ? std::static_pointer_cast<OperatorTensor>(relu)->getOutput(0) : op.getOutput(0),
                mFusedForward, mState, "FastBatchNorm2D+ReLU");
}

std::shared_ptr<OperatorImpl> FastBatchNormReLUImpl::makeAidgeImpl() const
{
    return Registrar<BatchNorm_Op<2>>::create("cpu")(static_cast<const BatchNorm_Op<2> &>(mOp));
}

bool FastReLUAfterBatchNormImpl::fused() const
{
    return batchNormReluRunFused(mBatchNorm.lock(), std::const_pointer_cast<Operator>(mOp.shared_from_this()));
}

void FastReLUAfterBatchNormImpl::fastForward()
{
    if (fused()) {
        return;
    }
    const auto &op = static_cast<const OperatorTensor &>(mOp);
    if (op.getInput(0)->dims() != op.getOutput(0)->dims()) {
        throw std::runtime_error("FastReLU: input and output shapes differ");
    }
    fastReLUForward(static_cast<long>(op.getOutput(0)->size()), floatPtr(op.getInput(0), "FastReLU", "input"),
                    floatPtr(op.getOutput(0), "FastReLU", "output"));
}

void FastReLUAfterBatchNormImpl::fastBackward()
{
    if (fused()) {
        return;
    }
    const auto &op = static_cast<const OperatorTensor &>(mOp);
    fastReLUBackward(static_cast<long>(op.getOutput(0)->size()), floatPtr(op.getInput(0), "FastReLU", "input"),
                     floatPtr(op.getOutput(0)->grad(), "FastReLU", "output gradient"),
                     floatPtr(op.getInput(0)->grad(), "FastReLU", "input gradient"));
}

std::shared_ptr<OperatorImpl> FastReLUAfterBatchNormImpl::makeAidgeImpl() const
{
    return Registrar<ReLU_Op>::create("cpu")(static_cast<const ReLU_Op &>(mOp));
}

bool isFusedAway(const std::shared_ptr<Node> &node)
{
    const auto impl = std::dynamic_pointer_cast<FastBatchNormReLUImpl>(node->getOperator()->getImpl());
    return impl != nullptr && impl->fused();
}

namespace {

/// The ReLU a BatchNorm2D node's output goes to, alone (nullptr otherwise).
std::shared_ptr<Node> soleReLUChild(const std::shared_ptr<Node> &bn)
{
    const auto children = bn->getOrderedChildren();
    if (children.size() != 1 || children[0].size() != 1) {
        return nullptr;
    }
    const auto child = children[0][0];
    if (!child || child->type() != ReLU_Op::Type || !std::dynamic_pointer_cast<ReLU_Op>(child->getOperator()) ||
        child->getParent(0) != bn) {
        return nullptr;
    }
    return child;
}

FastKernel fastBatchNormKernel()
{
    FastKernel kernel = FastKernel::of<BatchNorm_Op<2>, FastBatchNorm2DImpl>();
    kernel.attach = [](const std::shared_ptr<Node> &node) -> std::size_t {
        const auto op = node->getOperator();
        const auto relu = soleReLUChild(node);
        if (!relu || !unsupportedReason(relu).empty()) {
            op->setImpl(std::make_shared<FastBatchNorm2DImpl>(*op));
            return 1;
        }
        const bool reluChanges = !std::dynamic_pointer_cast<FastReLUAfterBatchNormImpl>(relu->getOperator()->getImpl()) &&
                                 !isAccelerated(relu);
        op->setImpl(std::make_shared<FastBatchNormReLUImpl>(*op, relu->getOperator()));
        relu->getOperator()->setImpl(std::make_shared<FastReLUAfterBatchNormImpl>(*relu->getOperator(), op));
        return reluChanges ? 2 : 1;
    };
    return kernel;
}

const FastKernelRegistrar registerFastBatchNorm2D(BatchNorm_Op<2>::Type, fastBatchNormKernel());

} // namespace

} // namespace incremental
} // namespace Aidge
