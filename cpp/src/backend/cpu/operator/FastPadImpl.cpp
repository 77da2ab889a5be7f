#include "aidge/incremental/backend/cpu/operator/FastPadImpl.hpp"

#include <memory>
#include <stdexcept>
#include <vector>

#include <fmt/format.h>

#include "aidge/incremental/backend/cpu/FastKernelRegistry.hpp"
#include "aidge/incremental/backend/cpu/operator/FastPadImpl_kernels.hpp"
#include "aidge/operator/Pad.hpp"
#include "aidge/utils/Registrar.hpp"

namespace Aidge {
namespace incremental {

/// Begin offsets per axis from the pads ([begin..., end...] over `axes`, or
/// over every axis when `axes` is empty, as ONNX); empty if unsupported.
std::vector<std::size_t> padBegins(const Pad_Op &op, const std::vector<std::size_t> &inDims)
{
    const std::size_t r = inDims.size();
    std::vector<int> axes;
    if (op.axes().empty()) {
        for (std::size_t a = 0; a < r; ++a) {
            axes.push_back(static_cast<int>(a));
        }
    } else {
        for (const auto a : op.axes()) {
            const int ax = a < 0 ? static_cast<int>(r) + a : a;
            if (ax < 0 || ax >= static_cast<int>(r)) {
                return {};
            }
            axes.push_back(ax);
        }
    }
    const auto &pads = op.pads();
    if (pads.size() != 2 * axes.size()) {
        return {};
    }
    std::vector<std::size_t> begin(r, 0);
    for (std::size_t k = 0; k < axes.size(); ++k) {
        if (pads[k] < 0 || pads[k + axes.size()] < 0) {
            return {};
        }
        begin[axes[k]] = static_cast<std::size_t>(pads[k]);
    }
    return begin;
}

/// The padding value (Aidge: 0 when the constant tensor is empty); false if unreadable.
bool padValue(const Pad_Op &op, float &value)
{
    const Tensor &cv = op.constantValue();
    if (cv.size() == 0) {
        value = 0.0f;
        return true;
    }
    if (cv.size() != 1 || !cv.impl() || cv.impl()->backend() != "cpu") {
        return false;
    }
    const void *p = cv.impl()->hostPtr(cv.implOffset());
    if (cv.dtype() == DataType::Float32) {
        value = *static_cast<const float *>(p);
    } else if (cv.dtype() == DataType::Float64) {
        value = static_cast<float>(*static_cast<const double *>(p));
    } else {
        return false;
    }
    return true;
}

namespace {

std::vector<std::size_t> checkedBegins(const Pad_Op &op)
{
    const auto &in = op.getInput(0)->dims();
    const auto &out = op.getOutput(0)->dims();
    const auto begin = padBegins(op, in);
    bool ok = !begin.empty() && in.size() == out.size();
    for (std::size_t a = 0; ok && a < in.size(); ++a) {
        ok = out[a] >= in[a] + begin[a];
    }
    if (!ok) {
        throw std::runtime_error(fmt::format(
            "FastPad: pads {} on axes {} do not map input {} to output {}", op.pads(),
            std::vector<int>(op.axes().begin(), op.axes().end()), in, out));
    }
    return begin;
}

} // namespace

void FastPadImpl::fastForward()
{
    const auto &op = static_cast<const Pad_Op &>(mOp);
    const auto begin = checkedBegins(op);
    float value = 0.0f;
    if (!padValue(op, value)) {
        throw std::runtime_error("FastPad: unreadable constant value");
    }
    fastPadForward(op.getInput(0)->dims(), op.getOutput(0)->dims(), begin, value,
                   floatPtr(op.getInput(0), "FastPad", "input"),
                   floatPtr(op.getOutput(0), "FastPad", "output"));
}

void FastPadImpl::fastBackward()
{
    const auto &op = static_cast<const Pad_Op &>(mOp);
    const auto begin = checkedBegins(op);
    fastPadBackward(op.getInput(0)->dims(), op.getOutput(0)->dims(), begin,
                    floatPtr(op.getOutput(0)->grad(), "FastPad", "output gradient"),
                    floatPtr(op.getInput(0)->grad(), "FastPad", "input gradient"));
}

std::shared_ptr<OperatorImpl> FastPadImpl::makeAidgeImpl() const
{
    return Registrar<Pad_Op>::create("cpu")(static_cast<const Pad_Op &>(mOp));
}

namespace {

std::string padUnsupportedReason(const Pad_Op &pad)
{
    if (pad.mode() != PaddingMode::Constant) {
        return "padding mode other than constant";
    }
    float value = 0.0f;
    if (!padValue(pad, value)) {
        return "padding value not a float scalar";
    }
    if (pad.getInput(0) && padBegins(pad, pad.getInput(0)->dims()).empty()) {
        return fmt::format("pads {} (negative, or axes out of range)", pad.pads());
    }
    return "";
}

const FastKernelRegistrar registerFastPad(Pad_Op::Type,
                                          FastKernel::of<Pad_Op, FastPadImpl>(padUnsupportedReason));

} // namespace

} // namespace incremental
} // namespace Aidge
