/**
 * Marking a node so that SequentialScheduler::backward() skips it (Grad-CAM
 * stops its backward at the tapped layer this way).
 *
 * The scheduler reads the node's "skipBackward" annotation as a C++ bool,
 * which an annotation set from Python (a py::object) is not: it must be set
 * from C++. Through Node::annotations(): the deprecated Node::attributes()
 * logs a warning on every call (thousands of lines per training run).
 */
#ifndef AIDGE_INCREMENTAL_SCHEDULER_SKIPBACKWARD_H_
#define AIDGE_INCREMENTAL_SCHEDULER_SKIPBACKWARD_H_

#include <memory>

#include "aidge/graph/Node.hpp"

namespace Aidge {
namespace incremental {

/// Sets the node's "skipBackward" annotation to `skip` (replacing any value,
/// of any type, it had); throws std::invalid_argument for a null node.
void setSkipBackward(const std::shared_ptr<Node> &node, bool skip);

} // namespace incremental
} // namespace Aidge

#endif // AIDGE_INCREMENTAL_SCHEDULER_SKIPBACKWARD_H_
