/**
 * The table accelerate() walks: one entry per operator type that has a fast
 * kernel. Each kernel's own FastXImpl.cpp adds its entry with a static
 * FastKernelRegistrar (as Aidge's REGISTRAR fills its registries), so a new
 * kernel is its header, its kernels header and its .cpp: no central edit.
 *
 * This is not Aidge's registry: accelerate() sets our implementations node by
 * node, and importing the package never changes what Aidge builds by itself.
 */
#ifndef AIDGE_INCREMENTAL_BACKEND_CPU_FASTKERNELREGISTRY_H_
#define AIDGE_INCREMENTAL_BACKEND_CPU_FASTKERNELREGISTRY_H_

#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "aidge/backend/OperatorImpl.hpp"
#include "aidge/graph/Node.hpp"
#include "aidge/operator/OperatorTensor.hpp"

namespace Aidge {
namespace incremental {

struct FastKernel {
    /// Why the kernel cannot run this operator for reasons of its type alone
    /// (operator class, attribute values); "" when there is none.
    /// unsupportedReason() adds the generic checks (backend, data type, data
    /// format, connected parameters).
    std::function<std::string(const OperatorTensor &op)> unsupportedReason;
    /// Gives a node that passed every check our implementation; returns how
    /// many nodes changed (a meta-operator's kernel may set its inner nodes').
    std::function<std::size_t(const std::shared_ptr<Node> &node)> attach;
    /// For a meta-operator that runs its micro-graph: the implementation whose
    /// backend it runs on. Unset: the operator's own implementation.
    std::function<std::shared_ptr<OperatorImpl>(const OperatorTensor &op)> runningImpl;

    /// The entry of an atomic operator class Op run by Impl (built from the
    /// operator): an operator that is not an Op is refused, then `reason`.
    template <class Op, class Impl>
    static FastKernel of(std::function<std::string(const Op &op)> reason = nullptr)
    {
        FastKernel kernel;
        kernel.unsupportedReason = [reason](const OperatorTensor &op) -> std::string {
            const auto *typed = dynamic_cast<const Op *>(&op);
            if (!typed) {
                return fmt::format("unexpected operator class for {}", op.type());
            }
            return reason ? reason(*typed) : std::string();
        };
        kernel.attach = [](const std::shared_ptr<Node> &node) -> std::size_t {
            const auto op = node->getOperator();
            op->setImpl(std::make_shared<Impl>(*op));
            return 1;
        };
        return kernel;
    }
};

class FastKernelRegistry {
  public:
    /// The entry of an operator type (Node::type()), or nullptr.
    static const FastKernel *find(const std::string &type);
    /// Every operator type that has an entry, sorted.
    static std::vector<std::string> types();
    /// Throws std::logic_error if the type has an entry already: two kernels
    /// for one type is a bug, not an override.
    static void add(const std::string &type, FastKernel kernel);

  private:
    /// A function-local static: registrars in other translation units may
    /// run before any namespace-scope object of this one is constructed.
    static std::map<std::string, FastKernel> &table();
};

/// Adds an entry when the module loads; one per kernel, in its FastXImpl.cpp.
struct FastKernelRegistrar {
    FastKernelRegistrar(const std::string &type, FastKernel kernel)
    {
        FastKernelRegistry::add(type, std::move(kernel));
    }
};

} // namespace incremental
} // namespace Aidge

#endif // AIDGE_INCREMENTAL_BACKEND_CPU_FASTKERNELREGISTRY_H_
