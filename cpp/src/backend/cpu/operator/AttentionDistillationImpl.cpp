#include "aidge/incremental/backend/cpu/operator/AttentionDistillationImpl.hpp"

#include <memory>
#include <stdexcept>

#include <fmt/format.h>

#include "aidge/backend/cpu/data/GetCPUPtr.h"
#include "aidge/incremental/backend/cpu/operator/AttentionDistillationImpl_kernels.hpp"
#include "aidge/utils/Registrar.hpp"

namespace Aidge {
namespace incremental {

REGISTRAR(AttentionDistillation_Op, "cpu", AttentionDistillationImpl_cpu::create);

REGISTRAR(AttentionDistillationImpl_cpu,
          {DataType::Float32},
          {ProdConso::defaultModel,
           AttentionDistillationImpl_cpu_forward_kernel<float>,
           AttentionDistillationImpl_cpu_backward_kernel<float>});
REGISTRAR(AttentionDistillationImpl_cpu,
          {DataType::Float64},
          {ProdConso::defaultModel,
           AttentionDistillationImpl_cpu_forward_kernel<double>,
           AttentionDistillationImpl_cpu_backward_kernel<double>});

} // namespace incremental

// OperatorImpl_cpu is a class template of namespace Aidge: C++ only lets its
// members be specialised there, hence the using-directive in each body.
template <> void incremental::AttentionDistillationImpl_cpu::forward()
{
    using namespace incremental;
    const auto &op = static_cast<const AttentionDistillation_Op &>(mOp);
    const AttentionDistillationShape shape = checkAttentionDistillationInputs(
        *op.getInput(0), *op.getInput(1), *op.getInput(2), op.epsilon());
    const auto impl =
        Registrar<AttentionDistillationImpl_cpu>::create(getBestMatch(getRequiredSpec()));
    const std::size_t nonFinite = impl.forward(
        op.epsilon(), shape, getCPUPtr(mOp.getRawInput(0)), getCPUPtr(mOp.getRawInput(1)),
        getCPUPtr(mOp.getRawInput(2)), getCPUPtr(mOp.getRawOutput(0)));
    if (nonFinite != 0) {
        throw std::invalid_argument(fmt::format(
            "attention distillation: {} non-finite (NaN or inf) values in the feature map, "
            "Grad-CAM weights or teacher map",
            nonFinite));
    }
}

template <> void incremental::AttentionDistillationImpl_cpu::backward()
{
    using namespace incremental;
    const auto &op = static_cast<const AttentionDistillation_Op &>(mOp);
    const AttentionDistillationShape shape = checkAttentionDistillationInputs(
        *op.getInput(0), *op.getInput(1), *op.getInput(2), op.epsilon());
    const auto impl =
        Registrar<AttentionDistillationImpl_cpu>::create(getBestMatch(getRequiredSpec()));
    impl.backward(op.epsilon(), shape, getCPUPtr(mOp.getRawInput(0)),
                  getCPUPtr(mOp.getRawInput(1)), getCPUPtr(mOp.getRawInput(2)),
                  getCPUPtr(op.getOutput(0)->grad()), getCPUPtr(op.getInput(0)->grad()),
                  getCPUPtr(op.getInput(1)->grad()));
}

} // namespace Aidge
