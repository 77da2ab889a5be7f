/**
 * Fast float32 CPU implementation of FC_Op (kernels in
 * FastFCImpl_kernels.hpp). Listed in FastKernelRegistry by its .cpp;
 * accelerate() sets it on a node. Never registered in Aidge's registry.
 */
#ifndef AIDGE_INCREMENTAL_BACKEND_CPU_OPERATOR_FASTFCIMPL_H_
#define AIDGE_INCREMENTAL_BACKEND_CPU_OPERATOR_FASTFCIMPL_H_

#include "aidge/incremental/backend/cpu/FastImpl.hpp"

namespace Aidge {
namespace incremental {

class FastFCImpl final : public FastImpl {
  public:
    using FastImpl::FastImpl;
    const char *kernelName() const noexcept override { return "FastFC"; }

  protected:
    void fastForward() override;
    void fastBackward() override;
    std::shared_ptr<OperatorImpl> makeAidgeImpl() const override;
};

} // namespace incremental
} // namespace Aidge

#endif
