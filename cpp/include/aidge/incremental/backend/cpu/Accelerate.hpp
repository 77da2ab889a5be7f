/**
 * accelerate(graph): gives our fast float32 CPU implementations to the nodes
 * that support them, node by node (Operator::setImpl). Which operator types
 * have a kernel, and what each refuses, comes from FastKernelRegistry; the
 * checks here are the generic ones (backend, data type, data format,
 * connected parameters). Aidge's registry is never touched.
 */
#ifndef AIDGE_INCREMENTAL_BACKEND_CPU_ACCELERATE_H_
#define AIDGE_INCREMENTAL_BACKEND_CPU_ACCELERATE_H_

#include <cstddef>
#include <memory>
#include <string>

#include "aidge/graph/GraphView.hpp"
#include "aidge/graph/Node.hpp"

namespace Aidge {
namespace incremental {

/// Gives our implementation to every supported node (recursing into
/// meta-operators that run their micro-graph); returns how many changed.
std::size_t accelerate(const std::shared_ptr<GraphView> &graph);

/// Whether this node currently runs one of our Fast* implementations.
bool isAccelerated(const std::shared_ptr<Node> &node);

/// Why accelerate() would leave this node on Aidge's kernel ("" = supported).
std::string unsupportedReason(const std::shared_ptr<Node> &node);

} // namespace incremental
} // namespace Aidge

#endif // AIDGE_INCREMENTAL_BACKEND_CPU_ACCELERATE_H_
