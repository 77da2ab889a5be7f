#include "aidge/incremental/backend/cpu/operator/FastConvImpl.hpp"

#include <array>
#include <memory>
#include <stdexcept>
#include <vector>

#include <fmt/format.h>

#include "aidge/incremental/backend/cpu/ConvAlgorithms.hpp"
#include "aidge/incremental/backend/cpu/FastKernelRegistry.hpp"
#include "aidge/incremental/backend/cpu/operator/FastConvImpl_kernels.hpp"
#include "aidge/incremental/backend/cpu/operator/FastPadImpl.hpp"
#include "aidge/operator/Conv.hpp"
#include "aidge/operator/MetaOperator.hpp"
#include "aidge/operator/Pad.hpp"

#include "aidge/utils/Registrar.hpp"

namespace Aidge {
namespace incremental {
namespace {

/// Shape of a convolution of x (through `op`'s weights and strides) into y,
/// with zero padding `pads` (top, left, bottom, right) applied to x.
ConvShape convShape(const Conv_Op<2> &op, const std::vector<DimSize_t> &x,
                    const std::vector<DimSize_t> &y, const std::array<int, 4> &pads,
                    const char *name)
{
    const auto &w = op.getInput(1)->dims();
    if (x.size() != 4 || w.size() != 4 || y.size() != 4 || x[1] != w[1] ||
        y[0] != x[0] || y[1] != w[0]) {
        throw std::runtime_error(fmt::format(
            "{}: unexpected shapes input {} weight {} output {}", name, x, w, y));
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
    s.PT = pads[0];
    s.PL = pads[1];
    s.PB = pads[2];
    s.PR = pads[3];
    s.HO = static_cast<int>(y[2]);
    s.WO = static_cast<int>(y[3]);
    if (s.HO != (s.H + s.PT + s.PB - s.KH) / s.SH + 1 ||
        s.WO != (s.W + s.PL + s.PR - s.KW) / s.SW + 1) {
        throw std::runtime_error(fmt::format(
            "{}: output {} does not match input {} padded by {} with kernel {} stride {}",
            name, y, x, pads, op.kernelDims(), op.strideDims()));
    }
    return s;
}

ConvShape convShape(const Conv_Op<2> &op)
{
    return convShape(op, op.getInput(0)->dims(), op.getOutput(0)->dims(), {0, 0, 0, 0}, "FastConv2D");
}

const std::shared_ptr<Tensor> bias(const OperatorTensor &op)
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
    convForward(s, floatPtr(op.getInput(0), "FastConv2D", "input"),
                    floatPtr(op.getInput(1), "FastConv2D", "weight"),
                    b ? floatPtr(b, "FastConv2D", "bias") : nullptr,
                    floatPtr(op.getOutput(0), "FastConv2D", "output"));
}

void FastConv2DImpl::fastBackward()
{
    const auto &op = static_cast<const Conv_Op<2> &>(mOp);
    const ConvShape s = convShape(op);
    const auto b = bias(op);
    convBackward(s, floatPtr(op.getInput(0), "FastConv2D", "input"),
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

namespace {

struct PaddedConvParts {
    std::shared_ptr<Operator> pad, conv; // null when the micro-graph is anything else
};

PaddedConvParts paddedConvParts(const MetaOperator_Op &meta)
{
    PaddedConvParts parts;
    const auto &graph = meta.getMicroGraph();
    if (!graph || graph->getNodes().size() != 2) {
        return parts;
    }
    for (const auto &node : graph->getNodes()) {
        if (node->type() == Pad_Op::Type && std::dynamic_pointer_cast<Pad_Op>(node->getOperator())) {
            parts.pad = node->getOperator();
        } else if (node->type() == Conv_Op<2>::Type &&
                   std::dynamic_pointer_cast<Conv_Op<2>>(node->getOperator())) {
            parts.conv = node->getOperator();
        }
    }
    if (!parts.pad || !parts.conv ||
        static_cast<const Conv_Op<2> &>(*parts.conv).getInput(0) !=
            static_cast<const Pad_Op &>(*parts.pad).getOutput(0)) {
        return {};
    }
    return parts;
}

/// (top, left, bottom, right) zero padding of the NCHW input `x` by `pad`;
/// false when the Pad is not a zero padding of the two spatial axes.
bool spatialZeroPads(const Pad_Op &pad, const std::vector<DimSize_t> &x, std::array<int, 4> &out)
{
    float value = 1.0f;
    if (x.size() != 4 || pad.mode() != PaddingMode::Constant || !padValue(pad, value) || value != 0.0f) {
        return false;
    }
    const auto begin = padBegins(pad, x);
    const auto &padded = pad.getOutput(0)->dims();
    if (begin.size() != 4 || padded.size() != 4 || begin[0] != 0 || begin[1] != 0 ||
        padded[0] != x[0] || padded[1] != x[1] || padded[2] < x[2] + begin[2] ||
        padded[3] < x[3] + begin[3]) {
        return false;
    }
    out = {static_cast<int>(begin[2]), static_cast<int>(begin[3]),
           static_cast<int>(padded[2] - x[2] - begin[2]), static_cast<int>(padded[3] - x[3] - begin[3])};
    return true;
}

bool cpuFloat32OrAbsent(const std::shared_ptr<Tensor> &t)
{
    return !t || t->size() == 0 || isCpuFloat32(t);
}

/// The joint decision of the pair (see FastConvImpl.hpp).
bool padConvRunFused(const std::shared_ptr<Operator> &padOp, const std::shared_ptr<Operator> &convOp)
{
    const auto pad = std::dynamic_pointer_cast<Pad_Op>(padOp);
    const auto conv = std::dynamic_pointer_cast<Conv_Op<2>>(convOp);
    if (!pad || !conv || !std::dynamic_pointer_cast<FastPadIntoConvImpl>(pad->getImpl()) ||
        !std::dynamic_pointer_cast<FastConvFromPadImpl>(conv->getImpl()) ||
        conv->getInput(0) != pad->getOutput(0)) {
        return false;
    }
    for (const auto d : conv->dilationDims()) { // attributes may have changed since accelerate()
        if (d != 1) {
            return false;
        }
    }
    const auto x = pad->getInput(0);
    if (!isCpuFloat32(x) || !isCpuFloat32(pad->getOutput(0)) || !isCpuFloat32(conv->getInput(1)) ||
        !cpuFloat32OrAbsent(conv->getInput(2)) || !isCpuFloat32(conv->getOutput(0))) {
        return false;
    }
    std::array<int, 4> pads{};
    return spatialZeroPads(*pad, x->dims(), pads);
}

ConvShape fusedShape(const Pad_Op &pad, const Conv_Op<2> &conv)
{
    std::array<int, 4> pads{};
    if (!spatialZeroPads(pad, pad.getInput(0)->dims(), pads)) {
        throw std::runtime_error("FastPaddedConv2D: the Pad is no longer a zero padding of the spatial axes");
    }
    return convShape(conv, pad.getInput(0)->dims(), conv.getOutput(0)->dims(), pads, "FastPaddedConv2D");
}

} // namespace

bool FastPadIntoConvImpl::runsFast() const
{
    return padConvRunFused(std::const_pointer_cast<Operator>(mOp.shared_from_this()), mConv.lock());
}

std::shared_ptr<OperatorImpl> FastPadIntoConvImpl::makeAidgeImpl() const
{
    return Registrar<Pad_Op>::create("cpu")(static_cast<const Pad_Op &>(mOp));
}

bool FastConvFromPadImpl::runsFast() const
{
    return padConvRunFused(mPad.lock(), std::const_pointer_cast<Operator>(mOp.shared_from_this()));
}

void FastConvFromPadImpl::fastForward()
{
    const auto pad = std::static_pointer_cast<Pad_Op>(mPad.lock());
    const auto &conv = static_cast<const Conv_Op<2> &>(mOp);
    const ConvShape s = fusedShape(*pad, conv);
    const auto b = bias(conv);
    convForward(s, floatPtr(pad->getInput(0), "FastPaddedConv2D", "input"),
                    floatPtr(conv.getInput(1), "FastPaddedConv2D", "weight"),
                    b ? floatPtr(b, "FastPaddedConv2D", "bias") : nullptr,
                    floatPtr(conv.getOutput(0), "FastPaddedConv2D", "output"));
}

void FastConvFromPadImpl::fastBackward()
{
    const auto pad = std::static_pointer_cast<Pad_Op>(mPad.lock());
    const auto &conv = static_cast<const Conv_Op<2> &>(mOp);
    const ConvShape s = fusedShape(*pad, conv);
    const auto b = bias(conv);
    convBackward(s, floatPtr(pad->getInput(0), "FastPaddedConv2D", "input"),
                     floatPtr(conv.getInput(1), "FastPaddedConv2D", "weight"),
                     floatPtr(conv.getOutput(0)->grad(), "FastPaddedConv2D", "output gradient"),
                     floatPtr(pad->getInput(0)->grad(), "FastPaddedConv2D", "input gradient"),
                     floatPtr(conv.getInput(1)->grad(), "FastPaddedConv2D", "weight gradient"),
                     b ? floatPtr(b->grad(), "FastPaddedConv2D", "bias gradient") : nullptr);
}

std::shared_ptr<OperatorImpl> FastConvFromPadImpl::makeAidgeImpl() const
{
    return Registrar<Conv_Op<2>>::create("cpu")(static_cast<const Conv_Op<2> &>(mOp));
}

namespace {

/// Type name of the meta-operator made by Aidge's PaddedConv2D().
constexpr const char *kPaddedConv2DType = "PaddedConv2D";

/// Why a PaddedConv2D meta-operator cannot run as one kernel ("" = it can):
/// its micro-graph must be a Pad (constant 0, spatial axes only) feeding a
/// Conv2D (dilation 1).
std::string paddedConvUnsupportedReason(const MetaOperator_Op &meta)
{
    const auto parts = paddedConvParts(meta);
    if (!parts.pad || !parts.conv) {
        return "micro-graph is not a Pad feeding a Conv2D";
    }
    const auto &conv = static_cast<const Conv_Op<2> &>(*parts.conv);
    const auto &pad = static_cast<const Pad_Op &>(*parts.pad);
    for (const auto d : conv.dilationDims()) {
        if (d != 1) {
            return fmt::format("dilation {} (only 1 is supported)", conv.dilationDims());
        }
    }
    std::array<int, 4> pads{};
    if (!pad.getInput(0) || !spatialZeroPads(pad, pad.getInput(0)->dims(), pads)) {
        return fmt::format("pads {} (only a zero padding of the two spatial axes)", pad.pads());
    }
    return "";
}

/// Gives the pair to a PaddedConv2D's inner nodes (call only when
/// paddedConvUnsupportedReason is empty); returns how many nodes changed.
std::size_t accelerateFusedPaddedConv(const MetaOperator_Op &meta)
{
    const auto parts = paddedConvParts(meta);
    if (!parts.pad || !parts.conv) {
        return 0;
    }
    if (std::dynamic_pointer_cast<FastPadIntoConvImpl>(parts.pad->getImpl()) &&
        std::dynamic_pointer_cast<FastConvFromPadImpl>(parts.conv->getImpl())) {
        return 0;
    }
    parts.pad->setImpl(std::make_shared<FastPadIntoConvImpl>(*parts.pad, parts.conv));
    parts.conv->setImpl(std::make_shared<FastConvFromPadImpl>(*parts.conv, parts.pad));
    return 2;
}

std::string conv2DUnsupportedReason(const Conv_Op<2> &conv)
{
    for (const auto d : conv.dilationDims()) {
        if (d != 1) {
            return fmt::format("dilation {} (only 1 is supported)", conv.dilationDims());
        }
    }
    for (const auto st : conv.strideDims()) {
        if (st < 1) {
            return fmt::format("stride {}", conv.strideDims());
        }
    }
    return "";
}

/// The pair of FastConvImpl.hpp on a PaddedConv2D's inner nodes; the node
/// itself keeps no implementation (a meta-operator with one cannot be cloned).
FastKernel fastPaddedConvKernel()
{
    FastKernel kernel;
    kernel.unsupportedReason = [](const OperatorTensor &op) -> std::string {
        const auto *meta = dynamic_cast<const MetaOperator_Op *>(&op);
        if (!meta) {
            return "unexpected operator class for PaddedConv2D";
        }
        return paddedConvUnsupportedReason(*meta);
    };
    // Without an implementation of its own, the meta-operator runs on its
    // inner Conv2D's backend.
    kernel.runningImpl = [](const OperatorTensor &op) {
        std::shared_ptr<OperatorImpl> impl = op.getImpl();
        const auto &meta = static_cast<const MetaOperator_Op &>(op);
        for (const auto &inner : meta.getMicroGraph()->getNodes()) {
            if (inner->type() == Conv_Op<2>::Type && !impl) {
                impl = inner->getOperator()->getImpl();
            }
        }
        return impl;
    };
    kernel.attach = [](const std::shared_ptr<Node> &node) {
        return accelerateFusedPaddedConv(static_cast<const MetaOperator_Op &>(*node->getOperator()));
    };
    return kernel;
}

const FastKernelRegistrar registerFastConv2D(
    Conv_Op<2>::Type, FastKernel::of<Conv_Op<2>, FastConv2DImpl>(conv2DUnsupportedReason));
const FastKernelRegistrar registerFastPaddedConv2D(kPaddedConv2DType, fastPaddedConvKernel());

} // namespace

} // namespace incremental
} // namespace Aidge
