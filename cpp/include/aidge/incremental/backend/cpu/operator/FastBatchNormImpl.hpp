/**
 * Fast float32 CPU implementation of BatchNorm_Op<2> (kernels in
 * FastBatchNormImpl_kernels.hpp). Listed in FastKernelRegistry by its .cpp;
 * accelerate() sets it on a node. Never registered in Aidge's registry.
 */
#ifndef AIDGE_INCREMENTAL_BACKEND_CPU_OPERATOR_FASTBATCHNORMIMPL_H_
#define AIDGE_INCREMENTAL_BACKEND_CPU_OPERATOR_FASTBATCHNORMIMPL_H_

#include <vector>

#include "aidge/incremental/backend/cpu/FastImpl.hpp"

namespace Aidge {
namespace incremental {

class FastBatchNorm2DImpl final : public FastImpl {
  public:
    using FastImpl::FastImpl;
    const char *kernelName() const noexcept override { return "FastBatchNorm2D"; }

  protected:
    void fastForward() override;
    void fastBackward() override;
    std::shared_ptr<OperatorImpl> makeAidgeImpl() const override;

  private:
    // Statistics the last forward normalised with, and its mode: backward
    // differentiates exactly that forward.
    std::vector<float> mMean, mInvStd;
    bool mForwardTraining = false;
    bool mHasForward = false;
};

} // namespace incremental
} // namespace Aidge

#endif
