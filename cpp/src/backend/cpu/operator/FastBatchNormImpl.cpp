#include "aidge/incremental/backend/cpu/operator/FastBatchNormImpl.hpp"

#include <memory>
#include <stdexcept>

#include <fmt/format.h>

#include "aidge/incremental/backend/cpu/FastKernelRegistry.hpp"
#include "aidge/incremental/backend/cpu/operator/FastBatchNormImpl_kernels.hpp"
#include "aidge/operator/BatchNorm.hpp"

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

} // namespace

void FastBatchNorm2DImpl::fastForward()
{
    const auto &op = static_cast<const BatchNorm_Op<2> &>(mOp);
    const BNShape s = bnShape(op);
    // Read at every call, so that the model switches train/eval without
    // re-attaching implementations.
    const bool training = op.trainingMode();
    if (training && static_cast<long>(s.N) * s.HW < 2) {
        throw std::runtime_error(
            "FastBatchNorm2D: training mode needs more than one value per channel "
            "(batch x height x width >= 2) to estimate a variance");
    }
    mMean.assign(s.C, 0.0f);
    mInvStd.assign(s.C, 0.0f);
    fastBatchNormForward(s.N, s.C, s.HW, training, op.momentum(), op.epsilon(),
                         floatPtr(op.getInput(0), "FastBatchNorm2D", "input"),
                         floatPtr(op.getInput(1), "FastBatchNorm2D", "scale"),
                         floatPtr(op.getInput(2), "FastBatchNorm2D", "shift"),
                         floatPtr(op.getInput(3), "FastBatchNorm2D", "running mean"),
                         floatPtr(op.getInput(4), "FastBatchNorm2D", "running variance"),
                         floatPtr(op.getOutput(0), "FastBatchNorm2D", "output"),
                         mMean.data(), mInvStd.data());
    mForwardTraining = training;
    mHasForward = true;
}

void FastBatchNorm2DImpl::fastBackward()
{
    const auto &op = static_cast<const BatchNorm_Op<2> &>(mOp);
    const BNShape s = bnShape(op);
    if (!mHasForward || static_cast<int>(mMean.size()) != s.C) {
        throw std::runtime_error("FastBatchNorm2D: backward() called before forward()");
    }
    fastBatchNormBackward(s.N, s.C, s.HW, mForwardTraining,
                          floatPtr(op.getInput(0), "FastBatchNorm2D", "input"),
                          floatPtr(op.getInput(1), "FastBatchNorm2D", "scale"),
                          mMean.data(), mInvStd.data(),
                          floatPtr(op.getOutput(0)->grad(), "FastBatchNorm2D", "output gradient"),
                          floatPtr(op.getInput(0)->grad(), "FastBatchNorm2D", "input gradient"),
                          floatPtr(op.getInput(1)->grad(), "FastBatchNorm2D", "scale gradient"),
                          floatPtr(op.getInput(2)->grad(), "FastBatchNorm2D", "shift gradient"));
}

std::shared_ptr<OperatorImpl> FastBatchNorm2DImpl::makeAidgeImpl() const
{
    return Registrar<BatchNorm_Op<2>>::create("cpu")(static_cast<const BatchNorm_Op<2> &>(mOp));
}

namespace {
const FastKernelRegistrar registerFastBatchNorm2D(
    BatchNorm_Op<2>::Type, FastKernel::of<BatchNorm_Op<2>, FastBatchNorm2DImpl>());
} // namespace

} // namespace incremental
} // namespace Aidge
