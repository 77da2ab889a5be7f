#include "aidge/incremental/backend/cuda/operator/AttentionDistillationImpl.hpp"

#include <memory>
#include <stdexcept>

#include <fmt/format.h>

#include "aidge/incremental/backend/cuda/operator/AttentionDistillationImpl_CUDA_kernels.hpp"
#include "aidge/incremental/backend/cuda/utils/TensorPtr.hpp"
#include "aidge/utils/Registrar.hpp"

namespace Aidge {
namespace incremental {
namespace {

template <class T>
std::size_t forwardKernel(float epsilon, const AttentionDistillationShape &shape,
                          const void *features, const void *weights, const void *teacherMap,
                          void *loss)
{
    return launchAttentionDistillationForward<T>(
        static_cast<double>(epsilon), shape.batch, shape.channels, shape.pixels,
        static_cast<const T *>(features), static_cast<const T *>(weights),
        static_cast<const T *>(teacherMap), static_cast<T *>(loss));
}

template <class T>
void backwardKernel(float epsilon, const AttentionDistillationShape &shape, const void *features,
                    const void *weights, const void *teacherMap, const void *gradLoss,
                    void *gradFeatures, void *gradWeights)
{
    launchAttentionDistillationBackward<T>(
        static_cast<double>(epsilon), shape.batch, shape.channels, shape.pixels,
        static_cast<const T *>(features), static_cast<const T *>(weights),
        static_cast<const T *>(teacherMap), static_cast<const T *>(gradLoss),
        static_cast<T *>(gradFeatures), static_cast<T *>(gradWeights));
}

constexpr const char *kName = "attention distillation";

} // namespace

REGISTRAR(AttentionDistillation_Op, "cuda", AttentionDistillationImpl_cuda::create);

REGISTRAR(AttentionDistillationImpl_cuda,
          {DataType::Float32},
          {ProdConso::defaultModel, forwardKernel<float>, backwardKernel<float>});
REGISTRAR(AttentionDistillationImpl_cuda,
          {DataType::Float64},
          {ProdConso::defaultModel, forwardKernel<double>, backwardKernel<double>});

} // namespace incremental

// OperatorImpl_cuda is a class template of namespace Aidge: C++ only lets its
// members be specialised there, hence the using-directive in each body.
template <> void incremental::AttentionDistillationImpl_cuda::forward()
{
    using namespace incremental;
    const auto &op = static_cast<const AttentionDistillation_Op &>(mOp);
    const AttentionDistillationShape shape = checkAttentionDistillationInputs(
        *op.getInput(0), *op.getInput(1), *op.getInput(2), op.epsilon());
    const auto impl =
        Registrar<AttentionDistillationImpl_cuda>::create(getBestMatch(getRequiredSpec()));
    const std::size_t nonFinite = impl.forward(
        op.epsilon(), shape, cudaDataPtr(*op.getInput(0), kName, "feature maps"),
        cudaDataPtr(*op.getInput(1), kName, "Grad-CAM weights"),
        cudaDataPtr(*op.getInput(2), kName, "teacher maps"),
        cudaDataPtr(*op.getOutput(0), kName, "loss"));
    if (nonFinite != 0) {
        throw std::invalid_argument(fmt::format(
            "attention distillation: {} non-finite (NaN or inf) values in the feature map, "
            "Grad-CAM weights or teacher map",
            nonFinite));
    }
}

template <> void incremental::AttentionDistillationImpl_cuda::backward()
{
    using namespace incremental;
    const auto &op = static_cast<const AttentionDistillation_Op &>(mOp);
    const AttentionDistillationShape shape = checkAttentionDistillationInputs(
        *op.getInput(0), *op.getInput(1), *op.getInput(2), op.epsilon());
    const auto impl =
        Registrar<AttentionDistillationImpl_cuda>::create(getBestMatch(getRequiredSpec()));
    impl.backward(op.epsilon(), shape, cudaDataPtr(*op.getInput(0), kName, "feature maps"),
                  cudaDataPtr(*op.getInput(1), kName, "Grad-CAM weights"),
                  cudaDataPtr(*op.getInput(2), kName, "teacher maps"),
                  cudaDataPtr(*op.getOutput(0)->grad(), kName, "loss gradient"),
                  cudaDataPtr(*op.getInput(0)->grad(), kName, "feature gradient"),
                  cudaDataPtr(*op.getInput(1)->grad(), kName, "Grad-CAM weight gradient"));
}

} // namespace Aidge
