#include "aidge/incremental/backend/cpu/Accelerate.hpp"

#include <memory>
#include <stdexcept>
#include <string>

#include <fmt/format.h>

#include "aidge/incremental/backend/cpu/Blas.hpp"
#include "aidge/incremental/backend/cpu/FastImpl.hpp"
#include "aidge/incremental/backend/cpu/FastKernelRegistry.hpp"
#include "aidge/operator/MetaOperator.hpp"
#include "aidge/operator/OperatorTensor.hpp"

namespace Aidge {
namespace incremental {
namespace {

bool dataFormatOk(const std::shared_ptr<Tensor> &t)
{
    return t->dformat() == DataFormat::Default || t->dformat() == DataFormat::NCHW;
}

} // namespace

std::string unsupportedReason(const std::shared_ptr<Node> &node)
{
    const auto op = std::dynamic_pointer_cast<OperatorTensor>(node->getOperator());
    const std::string type = node->type();
    if (!op) {
        return "not a tensor operator";
    }
    const FastKernel *kernel = FastKernelRegistry::find(type);
    if (!kernel) {
        return fmt::format("no fast kernel for {}", type);
    }
    const std::string reason = kernel->unsupportedReason(*op);
    if (!reason.empty()) {
        return reason;
    }
    // The backend whose implementations the node runs (a meta-operator without
    // an implementation of its own runs its micro-graph's).
    const std::shared_ptr<OperatorImpl> impl =
        kernel->runningImpl ? kernel->runningImpl(*op) : op->getImpl();
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
    // Every FastImpl is one of the table's (no other code creates them).
    const auto impl = node->getOperator()->getImpl();
    return impl && std::dynamic_pointer_cast<FastImpl>(impl) != nullptr;
}

namespace {

std::size_t accelerateNodes(const GraphView &graph)
{
    std::size_t changed = 0;
    for (const auto &node : graph.getNodes()) {
        const auto op = node->getOperator();
        const FastKernel *kernel = FastKernelRegistry::find(node->type());
        if (!op->isAtomic()) {
            const auto meta = std::dynamic_pointer_cast<MetaOperator_Op>(op);
            if (!meta || meta->getImpl()) {
                continue; // a meta-operator with an implementation of its own runs that
            }
            if (kernel && unsupportedReason(node).empty()) {
                // a kernel for the whole meta-operator (PaddedConv2D: FastConvImpl.hpp)
                changed += kernel->attach(node);
            } else if (meta->getMicroGraph()) {
                // otherwise the micro-graph runs, with the inner nodes' implementations
                changed += accelerateNodes(*meta->getMicroGraph());
            }
            continue;
        }
        if (isAccelerated(node) || !unsupportedReason(node).empty()) {
            continue;
        }
        changed += kernel->attach(node);
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
