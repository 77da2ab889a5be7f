/**
 * Fast float32 CPU implementation of BatchNorm_Op<2> (kernels in
 * FastBatchNormImpl_kernels.hpp). Listed in FastKernelRegistry by its .cpp;
 * accelerate() sets it on a node. Never registered in Aidge's registry.
 */
#ifndef AIDGE_INCREMENTAL_BACKEND_CPU_OPERATOR_FASTBATCHNORMIMPL_H_
#define AIDGE_INCREMENTAL_BACKEND_CPU_OPERATOR_FASTBATCHNORMIMPL_H_

#include <memory>
#include <vector>

#include "aidge/graph/Node.hpp"
#include "aidge/incremental/backend/cpu/FastImpl.hpp"

namespace Aidge {
namespace incremental {

/// What a BatchNorm forward used (its backward differentiates exactly that).
struct BatchNormForwardState {
    std::vector<float> mean, invStd;
    bool training = false;
    bool done = false;
};

class FastBatchNorm2DImpl final : public FastImpl {
  public:
    using FastImpl::FastImpl;
    const char *kernelName() const noexcept override { return "FastBatchNorm2D"; }

  protected:
    void fastForward() override;
    void fastBackward() override;
    std::shared_ptr<OperatorImpl> makeAidgeImpl() const override;

  private:
    BatchNormForwardState mState;
};

/**
 * BatchNorm2D fused with the ReLU it feeds. accelerate() gives this pair to a
 * BatchNorm2D whose output goes to one ReLU alone: the BatchNorm computes
 * max(0, BatchNorm(x)) straight into the ReLU's output, and its backward
 * takes the ReLU's output gradient through both; the ReLU does nothing. The
 * BatchNorm's own output is never written (nor its gradient read): one pass
 * over the activations instead of two each way, and two tensors fewer in
 * memory. As with PaddedConv2D (FastConvImpl.hpp), both halves decide
 * together at every call: while each holds its half and the ReLU still reads
 * the BatchNorm's output, fused; otherwise each runs on its own (our kernels).
 * isFusedAway() tells which outputs are not computed.
 */
class FastBatchNormReLUImpl final : public FastImpl {
  public:
    FastBatchNormReLUImpl(const Operator &bn, const std::shared_ptr<Operator> &relu)
        : FastImpl(bn), mReLU(relu) {}
    const char *kernelName() const noexcept override { return "FastBatchNorm2D+ReLU (BatchNorm2D)"; }
    bool fused() const;

  protected:
    void fastForward() override;
    void fastBackward() override;
    std::shared_ptr<OperatorImpl> makeAidgeImpl() const override;

  private:
    std::weak_ptr<Operator> mReLU; // weak: each operator owns its own implementation
    BatchNormForwardState mState;
    bool mFusedForward = false;
};

class FastReLUAfterBatchNormImpl final : public FastImpl {
  public:
    FastReLUAfterBatchNormImpl(const Operator &relu, const std::shared_ptr<Operator> &bn)
        : FastImpl(relu), mBatchNorm(bn) {}
    const char *kernelName() const noexcept override { return "FastBatchNorm2D+ReLU (ReLU)"; }
    bool fused() const;

  protected:
    void fastForward() override;  // nothing when fused: the BatchNorm wrote the output
    void fastBackward() override; // nothing when fused: the BatchNorm reads the output gradient
    std::shared_ptr<OperatorImpl> makeAidgeImpl() const override;

  private:
    std::weak_ptr<Operator> mBatchNorm;
};

/// Whether this node's output is not computed because its kernel is fused into
/// its child's (a BatchNorm2D fused with its ReLU).
bool isFusedAway(const std::shared_ptr<Node> &node);

} // namespace incremental
} // namespace Aidge

#endif
