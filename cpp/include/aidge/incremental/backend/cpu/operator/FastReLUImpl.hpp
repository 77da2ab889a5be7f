/**
 * Fast float32 CPU implementation of ReLU (kernels in
 * FastElementwiseImpl_kernels.hpp). Listed in FastKernelRegistry by its .cpp;
 * accelerate() sets it on a node. Never registered in Aidge's registry.
 */
#ifndef AIDGE_INCREMENTAL_BACKEND_CPU_OPERATOR_FASTRELUIMPL_H_
#define AIDGE_INCREMENTAL_BACKEND_CPU_OPERATOR_FASTRELUIMPL_H_

#include "aidge/incremental/backend/cpu/FastImpl.hpp"

namespace Aidge {
namespace incremental {

class FastReLUImpl final : public FastImpl {
  public:
    using FastImpl::FastImpl;
    const char *kernelName() const noexcept override { return "FastReLU"; }

  protected:
    void fastForward() override;
    void fastBackward() override;
    std::shared_ptr<OperatorImpl> makeAidgeImpl() const override;
};

} // namespace incremental
} // namespace Aidge

#endif
