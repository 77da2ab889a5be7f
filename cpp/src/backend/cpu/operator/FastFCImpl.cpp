#include "aidge/incremental/backend/cpu/operator/FastFCImpl.hpp"

#include <memory>
#include <stdexcept>

#include <fmt/format.h>

#include "aidge/incremental/backend/cpu/FastKernelRegistry.hpp"
#include "aidge/incremental/backend/cpu/operator/FastFCImpl_kernels.hpp"
#include "aidge/operator/FC.hpp"

#include "aidge/utils/Registrar.hpp"

namespace Aidge {
namespace incremental {
namespace {

struct FCShape {
    int N, I, O;
};

FCShape fcShape(const FC_Op &op)
{
    const auto &x = op.getInput(0);
    const auto &w = op.getInput(1)->dims();
    const auto &y = op.getOutput(0)->dims();
    if (x->dims().empty() || w.size() != 2 || y.size() != 2 || y[0] != x->dims()[0] ||
        y[1] != w[0] || x->size() != x->dims()[0] * w[1]) {
        throw std::runtime_error(fmt::format(
            "FastFC: unexpected shapes input {} weight {} output {}", x->dims(), w, y));
    }
    return {static_cast<int>(y[0]), static_cast<int>(w[1]), static_cast<int>(w[0])};
}

const std::shared_ptr<Tensor> bias(const FC_Op &op)
{
    const auto b = op.getInput(2);
    return (b && b->size() > 0) ? b : nullptr;
}

} // namespace

void FastFCImpl::fastForward()
{
    const auto &op = static_cast<const FC_Op &>(mOp);
    const FCShape s = fcShape(op);
    const auto b = bias(op);
    fastFCForward(s.N, s.I, s.O, floatPtr(op.getInput(0), "FastFC", "input"),
                  floatPtr(op.getInput(1), "FastFC", "weight"),
                  b ? floatPtr(b, "FastFC", "bias") : nullptr,
                  floatPtr(op.getOutput(0), "FastFC", "output"));
}

void FastFCImpl::fastBackward()
{
    const auto &op = static_cast<const FC_Op &>(mOp);
    const FCShape s = fcShape(op);
    const auto b = bias(op);
    fastFCBackward(s.N, s.I, s.O, floatPtr(op.getInput(0), "FastFC", "input"),
                   floatPtr(op.getInput(1), "FastFC", "weight"),
                   floatPtr(op.getOutput(0)->grad(), "FastFC", "output gradient"),
                   floatPtr(op.getInput(0)->grad(), "FastFC", "input gradient"),
                   floatPtr(op.getInput(1)->grad(), "FastFC", "weight gradient"),
                   b ? floatPtr(b->grad(), "FastFC", "bias gradient") : nullptr);
}

std::shared_ptr<OperatorImpl> FastFCImpl::makeAidgeImpl() const
{
    return Registrar<FC_Op>::create("cpu")(static_cast<const FC_Op &>(mOp));
}

namespace {
const FastKernelRegistrar registerFastFC(FC_Op::Type, FastKernel::of<FC_Op, FastFCImpl>());
} // namespace

} // namespace incremental
} // namespace Aidge
