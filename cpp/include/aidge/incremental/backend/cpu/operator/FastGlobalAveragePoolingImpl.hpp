/**
 * Fast float32 CPU implementation of GlobalAveragePooling_Op (kernels in
 * FastGlobalAveragePoolingImpl_kernels.hpp). Listed in FastKernelRegistry by
 * its .cpp; accelerate() sets it on a node. Never registered in Aidge's
 * registry.
 */
#ifndef AIDGE_INCREMENTAL_BACKEND_CPU_OPERATOR_FASTGLOBALAVERAGEPOOLINGIMPL_H_
#define AIDGE_INCREMENTAL_BACKEND_CPU_OPERATOR_FASTGLOBALAVERAGEPOOLINGIMPL_H_

#include "aidge/incremental/backend/cpu/FastImpl.hpp"

namespace Aidge {
namespace incremental {

class FastGlobalAveragePoolingImpl final : public FastImpl {
  public:
    using FastImpl::FastImpl;
    const char *kernelName() const noexcept override { return "FastGlobalAveragePooling"; }

  protected:
    void fastForward() override;
    void fastBackward() override;
    std::shared_ptr<OperatorImpl> makeAidgeImpl() const override;
};

} // namespace incremental
} // namespace Aidge

#endif
