#include "aidge/incremental/backend/cpu/operator/FastGlobalAveragePoolingImpl.hpp"

#include <memory>
#include <stdexcept>

#include <fmt/format.h>

#include "aidge/incremental/backend/cpu/FastKernelRegistry.hpp"
#include "aidge/incremental/backend/cpu/operator/FastGlobalAveragePoolingImpl_kernels.hpp"
#include "aidge/operator/GlobalAveragePooling.hpp"

#include "aidge/utils/Registrar.hpp"

namespace Aidge {
namespace incremental {
namespace {

void gapShape(const Operator &op_, int &NC, int &HW)
{
    const auto &op = static_cast<const OperatorTensor &>(op_);
    const auto &x = op.getInput(0)->dims();
    const auto &y = op.getOutput(0)->dims();
    if (x.size() < 3 || y.size() < 2 || y[0] != x[0] || y[1] != x[1] ||
        op.getOutput(0)->size() != x[0] * x[1]) {
        throw std::runtime_error(fmt::format(
            "FastGlobalAveragePooling: unexpected shapes input {} output {}", x, y));
    }
    NC = static_cast<int>(x[0] * x[1]);
    HW = static_cast<int>(op.getInput(0)->size() / (x[0] * x[1]));
}

} // namespace

void FastGlobalAveragePoolingImpl::fastForward()
{
    const auto &op = static_cast<const OperatorTensor &>(mOp);
    int NC, HW;
    gapShape(mOp, NC, HW);
    fastGlobalAvgPoolForward(NC, HW, floatPtr(op.getInput(0), "FastGlobalAveragePooling", "input"),
                             floatPtr(op.getOutput(0), "FastGlobalAveragePooling", "output"));
}

void FastGlobalAveragePoolingImpl::fastBackward()
{
    const auto &op = static_cast<const OperatorTensor &>(mOp);
    int NC, HW;
    gapShape(mOp, NC, HW);
    fastGlobalAvgPoolBackward(
        NC, HW, floatPtr(op.getOutput(0)->grad(), "FastGlobalAveragePooling", "output gradient"),
        floatPtr(op.getInput(0)->grad(), "FastGlobalAveragePooling", "input gradient"));
}

std::shared_ptr<OperatorImpl> FastGlobalAveragePoolingImpl::makeAidgeImpl() const
{
    return Registrar<GlobalAveragePooling_Op>::create("cpu")(static_cast<const GlobalAveragePooling_Op &>(mOp));
}

namespace {
const FastKernelRegistrar registerFastGlobalAveragePooling(
    GlobalAveragePooling_Op::Type,
    FastKernel::of<GlobalAveragePooling_Op, FastGlobalAveragePoolingImpl>());
} // namespace

} // namespace incremental
} // namespace Aidge
