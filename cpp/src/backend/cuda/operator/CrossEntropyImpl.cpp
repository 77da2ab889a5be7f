#include "aidge/incremental/backend/cuda/operator/CrossEntropyImpl.hpp"

#include <memory>

#include "aidge/incremental/backend/cuda/operator/CrossEntropyImpl_CUDA_kernels.hpp"
#include "aidge/incremental/backend/cuda/utils/TensorPtr.hpp"
#include "aidge/utils/Registrar.hpp"

namespace Aidge {
namespace incremental {
namespace {

template <class T>
CrossEntropyDataCheck forwardKernel(const CrossEntropyShape &shape, const void *prediction,
                                    const void *target, void *loss)
{
    const CrossEntropyCudaDataCheck found = launchCrossEntropyForward<T>(
        shape.batch, shape.classes, static_cast<const T *>(prediction),
        static_cast<const T *>(target), static_cast<T *>(loss));
    CrossEntropyDataCheck check;
    check.nonFinite = found.nonFinite;
    check.negative = found.negative;
    return check;
}

template <class T>
void backwardKernel(const CrossEntropyShape &shape, const void *prediction, const void *target,
                    const void *gradLoss, void *gradPrediction)
{
    launchCrossEntropyBackward<T>(shape.batch, shape.classes,
                                    static_cast<const T *>(prediction),
                                    static_cast<const T *>(target),
                                    static_cast<const T *>(gradLoss),
                                    static_cast<T *>(gradPrediction));
}

} // namespace

REGISTRAR(CrossEntropy_Op, "cuda", CrossEntropyImpl_cuda::create);

REGISTRAR(CrossEntropyImpl_cuda,
          {DataType::Float32},
          {ProdConso::defaultModel, forwardKernel<float>, backwardKernel<float>});
REGISTRAR(CrossEntropyImpl_cuda,
          {DataType::Float64},
          {ProdConso::defaultModel, forwardKernel<double>, backwardKernel<double>});

} // namespace incremental

// OperatorImpl_cuda is a class template of namespace Aidge: C++ only lets its
// members be specialised there, hence the using-directive in each body.
template <> void incremental::CrossEntropyImpl_cuda::forward()
{
    using namespace incremental;
    const auto &op = static_cast<const CrossEntropy_Op &>(mOp);
    const CrossEntropyShape shape = checkCrossEntropyInputs(*op.getInput(0), *op.getInput(1));
    const auto impl = Registrar<CrossEntropyImpl_cuda>::create(getBestMatch(getRequiredSpec()));
    throwOnBadCrossEntropyData(
        impl.forward(shape, cudaDataPtr(*op.getInput(0), "cross-entropy", "logits"),
                     cudaDataPtr(*op.getInput(1), "cross-entropy", "targets"),
                     cudaDataPtr(*op.getOutput(0), "cross-entropy", "loss")));
}

template <> void incremental::CrossEntropyImpl_cuda::backward()
{
    using namespace incremental;
    const auto &op = static_cast<const CrossEntropy_Op &>(mOp);
    const CrossEntropyShape shape = checkCrossEntropyInputs(*op.getInput(0), *op.getInput(1));
    const auto impl = Registrar<CrossEntropyImpl_cuda>::create(getBestMatch(getRequiredSpec()));
    impl.backward(shape, cudaDataPtr(*op.getInput(0), "cross-entropy", "logits"),
                  cudaDataPtr(*op.getInput(1), "cross-entropy", "targets"),
                  cudaDataPtr(*op.getOutput(0)->grad(), "cross-entropy", "loss gradient"),
                  cudaDataPtr(*op.getInput(0)->grad(), "cross-entropy", "logit gradient"));
}

} // namespace Aidge
