#include "aidge/incremental/backend/cpu/operator/FastConvImpl.hpp"

#include <memory>
#include <stdexcept>

#include <fmt/format.h>

#include "aidge/incremental/backend/cpu/operator/FastConvImpl_kernels.hpp"
#include "aidge/operator/Conv.hpp"

#include "aidge/utils/Registrar.hpp"

namespace Aidge {
namespace incremental {
namespace {

ConvShape convShape(const Conv_Op<2> &op)
{
    const auto &x = op.getInput(0)->dims();
    const auto &w = op.getInput(1)->dims();
    const auto &y = op.getOutput(0)->dims();
    if (x.size() != 4 || w.size() != 4 || y.size() != 4 || x[1] != w[1] ||
        y[0] != x[0] || y[1] != w[0]) {
        throw std::runtime_error(fmt::format(
            "FastConv2D: unexpected shapes input {} weight {} output {}", x, w, y));
    }
    ConvShape s{};
    s.N = static_cast<int>(x[0]);
    s.C = static_cast<int>(x[1]);
    s.H = static_cast<int>(x[2]);
    s.W = static_cast<int>(x[3]);
    s.O = static_cast<int>(w[0]);
    s.KH = static_cast<int>(w[2]);
    s.KW = static_cast<int>(w[3]);
    s.SH = static_cast<int>(op.strideDims()[0]);
    s.SW = static_cast<int>(op.strideDims()[1]);
    s.HO = static_cast<int>(y[2]);
    s.WO = static_cast<int>(y[3]);
    if (s.HO != (s.H - s.KH) / s.SH + 1 || s.WO != (s.W - s.KW) / s.SW + 1) {
        throw std::runtime_error(fmt::format(
            "FastConv2D: output {} does not match input {} kernel {} stride {}",
            y, x, op.kernelDims(), op.strideDims()));
    }
    return s;
}

const std::shared_ptr<Tensor> bias(const Conv_Op<2> &op)
{
    const auto b = op.getInput(2);
    return (b && b->size() > 0) ? b : nullptr;
}

} // namespace

void FastConv2DImpl::fastForward()
{
    const auto &op = static_cast<const Conv_Op<2> &>(mOp);
    const ConvShape s = convShape(op);
    const auto b = bias(op);
    fastConvForward(s, floatPtr(op.getInput(0), "FastConv2D", "input"),
                    floatPtr(op.getInput(1), "FastConv2D", "weight"),
                    b ? floatPtr(b, "FastConv2D", "bias") : nullptr,
                    floatPtr(op.getOutput(0), "FastConv2D", "output"));
}

void FastConv2DImpl::fastBackward()
{
    const auto &op = static_cast<const Conv_Op<2> &>(mOp);
    const ConvShape s = convShape(op);
    const auto b = bias(op);
    fastConvBackward(s, floatPtr(op.getInput(0), "FastConv2D", "input"),
                     floatPtr(op.getInput(1), "FastConv2D", "weight"),
                     floatPtr(op.getOutput(0)->grad(), "FastConv2D", "output gradient"),
                     floatPtr(op.getInput(0)->grad(), "FastConv2D", "input gradient"),
                     floatPtr(op.getInput(1)->grad(), "FastConv2D", "weight gradient"),
                     b ? floatPtr(b->grad(), "FastConv2D", "bias gradient") : nullptr);
}

std::shared_ptr<OperatorImpl> FastConv2DImpl::makeAidgeImpl() const
{
    return Registrar<Conv_Op<2>>::create("cpu")(static_cast<const Conv_Op<2> &>(mOp));
}

} // namespace incremental
} // namespace Aidge
