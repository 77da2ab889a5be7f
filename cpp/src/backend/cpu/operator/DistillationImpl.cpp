#include "aidge/incremental/backend/cpu/operator/DistillationImpl.hpp"

#include <memory>
#include <stdexcept>

#include <fmt/format.h>

#include "aidge/backend/cpu/data/GetCPUPtr.h"
#include "aidge/incremental/backend/cpu/operator/DistillationImpl_kernels.hpp"
#include "aidge/utils/Registrar.hpp"

namespace Aidge {
namespace incremental {

REGISTRAR(Distillation_Op, "cpu", DistillationImpl_cpu::create);

REGISTRAR(DistillationImpl_cpu,
          {DataType::Float32},
          {ProdConso::defaultModel,
           DistillationImpl_cpu_forward_kernel<float>,
           DistillationImpl_cpu_backward_kernel<float>});
REGISTRAR(DistillationImpl_cpu,
          {DataType::Float64},
          {ProdConso::defaultModel,
           DistillationImpl_cpu_forward_kernel<double>,
           DistillationImpl_cpu_backward_kernel<double>});

} // namespace incremental

// OperatorImpl_cpu is a class template of namespace Aidge: C++ only lets its
// members be specialised there, hence the using-directive in each body.
template <> void incremental::DistillationImpl_cpu::forward()
{
    using namespace incremental;
    const auto &op = static_cast<const Distillation_Op &>(mOp);
    const DistillationShape shape = checkDistillationInputs(
        *op.getInput(0), *op.getInput(1), op.temperature(), op.nbOld());
    // The checks above guarantee a float type the registry holds: no silent
    // fallback to a kernel reading the data with the wrong type.
    const auto impl = Registrar<DistillationImpl_cpu>::create(
        getBestMatch(getRequiredSpec()));
    const std::size_t nonFinite = impl.forward(op.temperature(), op.form(), shape,
                                               getCPUPtr(mOp.getRawInput(0)),
                                               getCPUPtr(mOp.getRawInput(1)),
                                               getCPUPtr(mOp.getRawOutput(0)));
    if (nonFinite != 0) {
        throw std::invalid_argument(fmt::format(
            "distillation: {} non-finite (NaN or inf) logits in the distilled "
            "columns of the student or teacher",
            nonFinite));
    }
}

template <> void incremental::DistillationImpl_cpu::backward()
{
    using namespace incremental;
    const auto &op = static_cast<const Distillation_Op &>(mOp);
    const DistillationShape shape = checkDistillationInputs(
        *op.getInput(0), *op.getInput(1), op.temperature(), op.nbOld());
    const std::shared_ptr<Tensor> gradLoss = op.getOutput(0)->grad();
    const std::shared_ptr<Tensor> gradStudent = op.getInput(0)->grad();
    const auto impl = Registrar<DistillationImpl_cpu>::create(
        getBestMatch(getRequiredSpec()));
    impl.backward(op.temperature(), op.form(), shape,
                  getCPUPtr(mOp.getRawInput(0)), getCPUPtr(mOp.getRawInput(1)),
                  getCPUPtr(gradLoss), getCPUPtr(gradStudent));
}

} // namespace Aidge
