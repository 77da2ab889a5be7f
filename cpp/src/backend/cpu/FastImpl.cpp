#include "aidge/incremental/backend/cpu/FastImpl.hpp"

#include <memory>
#include <stdexcept>

#include <fmt/format.h>

#include "aidge/backend/cpu/data/GetCPUPtr.h"
#include "aidge/operator/OperatorTensor.hpp"

namespace Aidge {
namespace incremental {

bool isCpuFloat32(const std::shared_ptr<Tensor> &t)
{
    return t && t->impl() && t->dtype() == DataType::Float32 &&
           t->impl()->backend() == "cpu";
}

float *floatPtr(const std::shared_ptr<Tensor> &t, const char *op, const char *what)
{
    if (!isCpuFloat32(t)) {
        throw std::runtime_error(fmt::format(
            "{}: the {} is not a float32 tensor on the cpu backend (was the graph "
            "re-compiled with another data type after accelerate()?)",
            op, what));
    }
    if (!t->isContiguous()) {
        throw std::runtime_error(fmt::format("{}: the {} is not contiguous", op, what));
    }
    return static_cast<float *>(getCPUPtr(t));
}

bool FastImpl::tensorsSupported() const
{
    const auto &op = static_cast<const OperatorTensor &>(mOp);
    for (IOIndex_t i = 0; i < op.nbInputs(); ++i) {
        const auto in = op.getInput(i);
        // an empty tensor is an unconnected optional input (a meta-operator
        // holds one for a PaddedConv2D without bias)
        if (in && in->size() > 0 ? !isCpuFloat32(in)
                                 : (op.inputCategory(i) == InputCategory::Data ||
                                    op.inputCategory(i) == InputCategory::Param)) {
            return false;
        }
    }
    return isCpuFloat32(op.getOutput(0));
}

OperatorImpl &FastImpl::aidgeImpl()
{
    if (!mAidgeImpl) {
        mAidgeImpl = makeAidgeImpl();
    }
    return *mAidgeImpl;
}

void FastImpl::forward()
{
    if (runsFast()) {
        fastForward();
    } else {
        aidgeImpl().forward();
    }
}

void FastImpl::backward()
{
    if (runsFast()) {
        fastBackward();
    } else {
        aidgeImpl().backward();
    }
}

} // namespace incremental
} // namespace Aidge
