/**
 * Fast float32 CPU implementations of Conv_Op<2> and of the PaddedConv2D
 * meta-operator (kernels in FastConvImpl_kernels.hpp). Listed in
 * FastKernelRegistry by FastConvImpl.cpp; accelerate() sets them on nodes.
 * Never registered in Aidge's registry.
 */
#ifndef AIDGE_INCREMENTAL_BACKEND_CPU_OPERATOR_FASTCONVIMPL_H_
#define AIDGE_INCREMENTAL_BACKEND_CPU_OPERATOR_FASTCONVIMPL_H_

#include <memory>

#include "aidge/incremental/backend/cpu/FastImpl.hpp"

namespace Aidge {
namespace incremental {

class FastConv2DImpl final : public FastImpl {
  public:
    using FastImpl::FastImpl;
    const char *kernelName() const noexcept override { return "FastConv2D"; }

  protected:
    void fastForward() override;
    void fastBackward() override;
    std::shared_ptr<OperatorImpl> makeAidgeImpl() const override;
};

/**
 * PaddedConv2D as one kernel. Aidge runs a PaddedConv2D meta-operator as a
 * micro-graph (Pad then Conv2D, with its own scheduler). accelerate() gives its
 * two inner nodes a pair of implementations that work together: the Pad does
 * nothing, and the Conv2D reads the Pad's unpadded input, pads it while laying
 * it out for the products (FastConvImpl_kernels.hpp), and back-propagates
 * straight into the Pad's input gradient. The padded tensor is never written,
 * read, zeroed or back-propagated through.
 *
 * The pair sits on the inner nodes, not on the meta-operator: a meta-operator
 * with an implementation of its own cannot be cloned (its copy asks Aidge's
 * registry for a "PaddedConv2D" implementation, which does not exist).
 *
 * Both halves decide together, at every call, whether to run fused: only while
 * each still holds its half of the pair, the Conv2D still reads the Pad's
 * output, every tensor is float32 on the cpu backend and the Pad is still a
 * zero padding of the spatial axes. Otherwise both run Aidge's registry
 * kernels, as the micro-graph would.
 */
class FastPadIntoConvImpl final : public FastImpl {
  public:
    FastPadIntoConvImpl(const Operator &pad, const std::shared_ptr<Operator> &conv)
        : FastImpl(pad), mConv(conv) {}
    const char *kernelName() const noexcept override { return "FastPaddedConv2D (Pad)"; }

  protected:
    bool runsFast() const override;
    void fastForward() override {}  // the Conv2D pads as it reads
    void fastBackward() override {} // the Conv2D wrote the input gradient
    std::shared_ptr<OperatorImpl> makeAidgeImpl() const override;

  private:
    std::weak_ptr<Operator> mConv; // weak: each operator owns its own implementation
};

class FastConvFromPadImpl final : public FastImpl {
  public:
    FastConvFromPadImpl(const Operator &conv, const std::shared_ptr<Operator> &pad)
        : FastImpl(conv), mPad(pad) {}
    const char *kernelName() const noexcept override { return "FastPaddedConv2D (Conv2D)"; }

  protected:
    bool runsFast() const override;
    void fastForward() override;
    void fastBackward() override;
    std::shared_ptr<OperatorImpl> makeAidgeImpl() const override;

  private:
    std::weak_ptr<Operator> mPad;
};

} // namespace incremental
} // namespace Aidge

#endif
