/**
 * Fast float32 CPU implementation of Pad (kernels in FastPadImpl_kernels.hpp).
 * Listed in FastKernelRegistry by its .cpp; accelerate() sets it on a node.
 * Never registered in Aidge's registry.
 */
#ifndef AIDGE_INCREMENTAL_BACKEND_CPU_OPERATOR_FASTPADIMPL_H_
#define AIDGE_INCREMENTAL_BACKEND_CPU_OPERATOR_FASTPADIMPL_H_

#include <cstddef>
#include <vector>

#include "aidge/incremental/backend/cpu/FastImpl.hpp"
#include "aidge/operator/Pad.hpp"

namespace Aidge {
namespace incremental {

/// Begin offset of every axis, or empty when the pads are not ones we handle
/// (negative pads, axes out of range).
std::vector<std::size_t> padBegins(const Pad_Op &op, const std::vector<std::size_t> &inDims);
/// The constant padding value; false when it cannot be read as a float.
bool padValue(const Pad_Op &op, float &value);

class FastPadImpl final : public FastImpl {
  public:
    using FastImpl::FastImpl;
    const char *kernelName() const noexcept override { return "FastPad"; }

  protected:
    void fastForward() override;
    void fastBackward() override;
    std::shared_ptr<OperatorImpl> makeAidgeImpl() const override;
};

} // namespace incremental
} // namespace Aidge

#endif
