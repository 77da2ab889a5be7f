// accelerate(): attach our Fast* implementations to the nodes that support
// them, node by node (Operator::setImpl). Aidge's registry is never touched.
#include <memory>
#include <stdexcept>
#include <string>

#include <fmt/format.h>

#include "aidge/backend/cpu/data/GetCPUPtr.h"
#include "aidge/graph/GraphView.hpp"
#include "aidge/graph/Node.hpp"
#include "aidge/incremental/backend/cpu/Blas.hpp"
#include "aidge/incremental/backend/cpu/FastImpl.hpp"
#include "aidge/incremental/backend/cpu/operator/FastBatchNormImpl.hpp"
#include "aidge/incremental/backend/cpu/operator/FastConvImpl.hpp"
#include "aidge/incremental/backend/cpu/operator/FastFCImpl.hpp"
#include "aidge/incremental/backend/cpu/operator/FastAddImpl.hpp"
#include "aidge/incremental/backend/cpu/operator/FastGlobalAveragePoolingImpl.hpp"
#include "aidge/incremental/backend/cpu/operator/FastPadImpl.hpp"
#include "aidge/incremental/backend/cpu/operator/FastReLUImpl.hpp"
#include "aidge/operator/Add.hpp"
#include "aidge/operator/ReLU.hpp"
#include "aidge/operator/BatchNorm.hpp"
#include "aidge/operator/Conv.hpp"
#include "aidge/operator/FC.hpp"
#include "aidge/operator/GlobalAveragePooling.hpp"
#include "aidge/operator/MetaOperator.hpp"
#include "aidge/operator/OperatorTensor.hpp"

namespace Aidge {
namespace incremental {

bool isCpuFloat32(const std::shared_ptr<Tensor> &t)
{
    return t && t->impl() && t->dtype() == DataType::Float32 &&
           t->impl()->backend() == "cpu";
}

float *floatPtr(const std::shared_ptr<Tensor> &t, const char *op, const char *what)
{
    if (!isCpuFloat32(t)) {
        throw std::runtime_error(fmt::format(
            "{}: the {} is not a float32 tensor on the cpu backend (was the graph "
            "re-compiled with another data type after accelerate()?)",
            op, what));
    }
    if (!t->isContiguous()) {
        throw std::runtime_error(fmt::format("{}: the {} is not contiguous", op, what));
    }
    return static_cast<float *>(getCPUPtr(t));
}

bool FastImpl::tensorsSupported() const
{
    const auto &op = static_cast<const OperatorTensor &>(mOp);
    for (IOIndex_t i = 0; i < op.nbInputs(); ++i) {
        const auto in = op.getInput(i);
        // an empty tensor is an unconnected optional input (a meta-operator
        // holds one for a PaddedConv2D without bias)
        if (in && in->size() > 0 ? !isCpuFloat32(in)
                                 : (op.inputCategory(i) == InputCategory::Data ||
                                    op.inputCategory(i) == InputCategory::Param)) {
            return false;
        }
    }
    return isCpuFloat32(op.getOutput(0));
}

OperatorImpl &FastImpl::aidgeImpl()
{
    if (!mAidgeImpl) {
        mAidgeImpl = makeAidgeImpl();
    }
    return *mAidgeImpl;
}

void FastImpl::forward()
{
    if (runsFast()) {
        fastForward();
    } else {
        aidgeImpl().forward();
    }
}

void FastImpl::backward()
{
    if (runsFast()) {
        fastBackward();
    } else {
        aidgeImpl().backward();
    }
}

namespace {

/// Type name of the meta-operator made by Aidge's PaddedConv2D().
constexpr const char *kPaddedConv2DType = "PaddedConv2D";

bool dataFormatOk(const std::shared_ptr<Tensor> &t)
{
    return t->dformat() == DataFormat::Default || t->dformat() == DataFormat::NCHW;
}

std::shared_ptr<OperatorImpl> makeFast(const std::shared_ptr<Node> &node)
{
    const auto op = node->getOperator();
    const std::string type = node->type();
    if (type == Conv_Op<2>::Type) {
        return std::make_shared<FastConv2DImpl>(*op);
    }
    if (type == FC_Op::Type) {
        return std::make_shared<FastFCImpl>(*op);
    }
    if (type == BatchNorm_Op<2>::Type) {
        return std::make_shared<FastBatchNorm2DImpl>(*op);
    }
    if (type == GlobalAveragePooling_Op::Type) {
        return std::make_shared<FastGlobalAveragePoolingImpl>(*op);
    }
    if (type == Pad_Op::Type) {
        return std::make_shared<FastPadImpl>(*op);
    }
    if (type == ReLU_Op::Type) {
        return std::make_shared<FastReLUImpl>(*op);
    }
    if (type == Add_Op::Type) {
        return std::make_shared<FastAddImpl>(*op);
    }
    return nullptr;
}

} // namespace

std::string unsupportedReason(const std::shared_ptr<Node> &node)
{
    const auto op = std::dynamic_pointer_cast<OperatorTensor>(node->getOperator());
    const std::string type = node->type();
    if (!op) {
        return "not a tensor operator";
    }
    // The backend whose implementations the node runs (a meta-operator without
    // an implementation of its own runs its micro-graph's).
    std::shared_ptr<OperatorImpl> impl = op->getImpl();
    if (type == kPaddedConv2DType) {
        const auto meta = std::dynamic_pointer_cast<MetaOperator_Op>(op);
        if (!meta) {
            return "unexpected operator class for PaddedConv2D";
        }
        const std::string reason = paddedConvUnsupportedReason(*meta);
        if (!reason.empty()) {
            return reason;
        }
        for (const auto &inner : meta->getMicroGraph()->getNodes()) {
            if (inner->type() == Conv_Op<2>::Type && !impl) {
                impl = inner->getOperator()->getImpl();
            }
        }
    } else if (type == Conv_Op<2>::Type) {
        const auto conv = std::dynamic_pointer_cast<Conv_Op<2>>(op);
        if (!conv) {
            return "unexpected operator class for Conv2D";
        }
        for (const auto d : conv->dilationDims()) {
            if (d != 1) {
                return fmt::format("dilation {} (only 1 is supported)", conv->dilationDims());
            }
        }
        for (const auto st : conv->strideDims()) {
            if (st < 1) {
                return fmt::format("stride {}", conv->strideDims());
            }
        }
    } else if (type == FC_Op::Type) {
        if (!std::dynamic_pointer_cast<FC_Op>(op)) {
            return "unexpected operator class for FC";
        }
    } else if (type == BatchNorm_Op<2>::Type) {
        if (!std::dynamic_pointer_cast<BatchNorm_Op<2>>(op)) {
            return "unexpected operator class for BatchNorm2D";
        }
    } else if (type == GlobalAveragePooling_Op::Type) {
        if (!std::dynamic_pointer_cast<GlobalAveragePooling_Op>(op)) {
            return "unexpected operator class for GlobalAveragePooling";
        }
    } else if (type == Pad_Op::Type) {
        const auto pad = std::dynamic_pointer_cast<Pad_Op>(op);
        if (!pad) {
            return "unexpected operator class for Pad";
        }
        if (pad->mode() != PaddingMode::Constant) {
            return "padding mode other than constant";
        }
        float value = 0.0f;
        if (!padValue(*pad, value)) {
            return "padding value not a float scalar";
        }
        if (op->getInput(0) && padBegins(*pad, op->getInput(0)->dims()).empty()) {
            return fmt::format("pads {} (negative, or axes out of range)", pad->pads());
        }
    } else if (type == ReLU_Op::Type) {
        if (!std::dynamic_pointer_cast<ReLU_Op>(op)) {
            return "unexpected operator class for ReLU";
        }
    } else if (type == Add_Op::Type) {
        if (!std::dynamic_pointer_cast<Add_Op>(op) || op->nbInputs() != 2) {
            return "Add with other than two inputs";
        }
        if (op->getInput(0) && op->getInput(1) && op->getInput(0)->dims() != op->getInput(1)->dims()) {
            return fmt::format("broadcasting Add {} + {}", op->getInput(0)->dims(), op->getInput(1)->dims());
        }
    } else {
        return fmt::format("no fast kernel for {}", type);
    }
    if (!impl || impl->backend() != "cpu") {
        return fmt::format("backend '{}' (only 'cpu')", impl ? impl->backend() : std::string());
    }
    for (IOIndex_t i = 0; i < op->nbInputs(); ++i) {
        const auto in = op->getInput(i);
        if (!in) {
            // A data input can be associated later (a meta-operator's micro-graph
            // gets its input at run time; checked at every forward then).
            // Conv/FC bias is OptionalParam; other parameters are required.
            if (op->inputCategory(i) == InputCategory::Param) {
                return fmt::format("input #{} is not connected", i);
            }
            continue;
        }
        if (in->dtype() != DataType::Float32) {
            return fmt::format("input #{} is {} (only float32)", i, in->dtype());
        }
        if (!dataFormatOk(in)) {
            return fmt::format("input #{} has data format {} (only NCHW)", i, in->dformat());
        }
    }
    if (op->getOutput(0)->dtype() != DataType::Float32) {
        return fmt::format("output is {} (only float32)", op->getOutput(0)->dtype());
    }
    if (!dataFormatOk(op->getOutput(0))) {
        return fmt::format("output has data format {} (only NCHW)", op->getOutput(0)->dformat());
    }
    return "";
}

bool isAccelerated(const std::shared_ptr<Node> &node)
{
    const auto impl = node->getOperator()->getImpl();
    return impl && std::dynamic_pointer_cast<FastImpl>(impl) != nullptr;
}

namespace {

std::size_t accelerateNodes(const GraphView &graph)
{
    std::size_t changed = 0;
    for (const auto &node : graph.getNodes()) {
        const auto op = node->getOperator();
        if (!op->isAtomic()) {
            const auto meta = std::dynamic_pointer_cast<MetaOperator_Op>(op);
            if (!meta || meta->getImpl()) {
                continue; // a meta-operator with an implementation of its own runs that
            }
            if (node->type() == kPaddedConv2DType && unsupportedReason(node).empty()) {
                // one kernel for the Pad and the Conv2D (FastConvImpl.hpp)
                changed += accelerateFusedPaddedConv(*meta);
            } else if (meta->getMicroGraph()) {
                // otherwise the micro-graph runs, with the inner nodes' implementations
                changed += accelerateNodes(*meta->getMicroGraph());
            }
            continue;
        }
        if (isAccelerated(node) || !unsupportedReason(node).empty()) {
            continue;
        }
        op->setImpl(makeFast(node));
        ++changed;
    }
    return changed;
}

} // namespace

std::size_t accelerate(const std::shared_ptr<GraphView> &graph)
{
    if (!graph) {
        throw std::invalid_argument("accelerate: graph is None");
    }
    blasSingleThreaded();
    return accelerateNodes(*graph);
}

} // namespace incremental
} // namespace Aidge
