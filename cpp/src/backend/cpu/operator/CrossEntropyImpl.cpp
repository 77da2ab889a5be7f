#include "aidge/incremental/backend/cpu/operator/CrossEntropyImpl.hpp"

#include <memory>

#include "aidge/backend/cpu/data/GetCPUPtr.h"
#include "aidge/incremental/backend/cpu/operator/CrossEntropyImpl_kernels.hpp"
#include "aidge/utils/Registrar.hpp"

namespace Aidge {
namespace incremental {

REGISTRAR(CrossEntropy_Op, "cpu", CrossEntropyImpl_cpu::create);

REGISTRAR(CrossEntropyImpl_cpu,
          {DataType::Float32},
          {ProdConso::defaultModel,
           CrossEntropyImpl_cpu_forward_kernel<float>,
           CrossEntropyImpl_cpu_backward_kernel<float>});
REGISTRAR(CrossEntropyImpl_cpu,
          {DataType::Float64},
          {ProdConso::defaultModel,
           CrossEntropyImpl_cpu_forward_kernel<double>,
           CrossEntropyImpl_cpu_backward_kernel<double>});

} // namespace incremental

// OperatorImpl_cpu is a class template of namespace Aidge: C++ only lets its
// members be specialised there, hence the using-directive in each body.
template <> void incremental::CrossEntropyImpl_cpu::forward()
{
    using namespace incremental;
    const auto &op = static_cast<const CrossEntropy_Op &>(mOp);
    const CrossEntropyShape shape = checkCrossEntropyInputs(*op.getInput(0), *op.getInput(1));
    const auto impl = Registrar<CrossEntropyImpl_cpu>::create(getBestMatch(getRequiredSpec()));
    throwOnBadCrossEntropyData(impl.forward(shape, getCPUPtr(mOp.getRawInput(0)),
                                            getCPUPtr(mOp.getRawInput(1)),
                                            getCPUPtr(mOp.getRawOutput(0))));
}

template <> void incremental::CrossEntropyImpl_cpu::backward()
{
    using namespace incremental;
    const auto &op = static_cast<const CrossEntropy_Op &>(mOp);
    const CrossEntropyShape shape = checkCrossEntropyInputs(*op.getInput(0), *op.getInput(1));
    const auto impl = Registrar<CrossEntropyImpl_cpu>::create(getBestMatch(getRequiredSpec()));
    impl.backward(shape, getCPUPtr(mOp.getRawInput(0)), getCPUPtr(mOp.getRawInput(1)),
                  getCPUPtr(op.getOutput(0)->grad()), getCPUPtr(op.getInput(0)->grad()));
}

} // namespace Aidge
