/**
 * Base of our fast float32 CPU implementations (FastConv2DImpl, FastFCImpl,
 * ...). They are not registered in Aidge's registry: each is listed in
 * FastKernelRegistry, and accelerate(graph) (Accelerate.hpp) sets them on
 * individual nodes (Operator::setImpl), so importing the package never
 * changes what Aidge builds by itself.
 */
#ifndef AIDGE_INCREMENTAL_BACKEND_CPU_FASTIMPL_H_
#define AIDGE_INCREMENTAL_BACKEND_CPU_FASTIMPL_H_

#include <memory>
#include <string>

#include "aidge/backend/OperatorImpl.hpp"
#include "aidge/data/Tensor.hpp"
#include "aidge/operator/Operator.hpp"

namespace Aidge {
namespace incremental {

class FastImpl : public OperatorImpl {
  public:
    explicit FastImpl(const Operator &op) : OperatorImpl(op, "cpu") {}
    /// Name of the kernel family, for reports ("FastConv2D", ...).
    virtual const char *kernelName() const noexcept = 0;

    /// Our kernel when every connected tensor is float32 on the cpu backend;
    /// otherwise (the graph was re-compiled to another data type, which keeps
    /// implementations whose backend is unchanged) Aidge's registry kernel.
    void forward() final;
    void backward() final;

  protected:
    virtual void fastForward() = 0;
    virtual void fastBackward() = 0;
    /// Aidge's own implementation of this operator (from its registry).
    virtual std::shared_ptr<OperatorImpl> makeAidgeImpl() const = 0;
    /// Aidge's implementation, created on first use.
    OperatorImpl &aidgeImpl();
    /// Whether this call runs our kernel (default: every connected tensor is
    /// float32 on the cpu backend).
    virtual bool runsFast() const { return tensorsSupported(); }
    bool tensorsSupported() const;

  private:
    std::shared_ptr<OperatorImpl> mAidgeImpl;
};

/// Float32 CPU tensor (with an implementation) or nothing.
bool isCpuFloat32(const std::shared_ptr<Tensor> &t);

/// Raw float pointer of a float32 CPU tensor; throws naming `what` otherwise.
float *floatPtr(const std::shared_ptr<Tensor> &t, const char *op,
                const char *what);

} // namespace incremental
} // namespace Aidge

#endif // AIDGE_INCREMENTAL_BACKEND_CPU_FASTIMPL_H_
