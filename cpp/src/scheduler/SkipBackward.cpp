#include "aidge/incremental/scheduler/SkipBackward.hpp"

#include <stdexcept>

#include "aidge/utils/DynamicAttributes.hpp"

namespace Aidge {
namespace incremental {

void setSkipBackward(const std::shared_ptr<Node> &node, bool skip)
{
    if (!node) {
        throw std::invalid_argument("set_skip_backward: node is None");
    }
    const auto annotations = node->annotations();
    // Delete then add: a value set from Python is a py::object, which
    // setAttr<bool> would not replace.
    if (annotations->hasAttr("skipBackward")) {
        annotations->delAttr("skipBackward");
    }
    annotations->addAttr("skipBackward", skip);
}

} // namespace incremental
} // namespace Aidge
