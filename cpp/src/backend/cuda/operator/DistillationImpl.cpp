#include "aidge/incremental/backend/cuda/operator/DistillationImpl.hpp"

#include <memory>
#include <stdexcept>

#include <fmt/format.h>

#include "aidge/incremental/backend/cuda/operator/DistillationImpl_CUDA_kernels.hpp"
#include "aidge/incremental/backend/cuda/utils/TensorPtr.hpp"
#include "aidge/utils/Registrar.hpp"

namespace Aidge {
namespace incremental {
namespace {

DistillationCudaProblem problemOf(float temperature, DistillationForm form,
                                     const DistillationShape &shape)
{
    return {shape.batch, shape.studentCols, shape.teacherCols, shape.nbOld,
            static_cast<double>(temperature), form == DistillationForm::KL};
}

template <class T>
std::size_t forwardKernel(float temperature, DistillationForm form,
                          const DistillationShape &shape, const void *student,
                          const void *teacher, void *loss)
{
    return launchDistillationForward<T>(problemOf(temperature, form, shape),
                                         static_cast<const T *>(student),
                                         static_cast<const T *>(teacher),
                                         static_cast<T *>(loss));
}

template <class T>
void backwardKernel(float temperature, DistillationForm form,
                    const DistillationShape &shape, const void *student,
                    const void *teacher, const void *gradLoss, void *gradStudent)
{
    launchDistillationBackward<T>(problemOf(temperature, form, shape),
                                   static_cast<const T *>(student),
                                   static_cast<const T *>(teacher),
                                   static_cast<const T *>(gradLoss),
                                   static_cast<T *>(gradStudent));
}

} // namespace

REGISTRAR(Distillation_Op, "cuda", DistillationImpl_cuda::create);

REGISTRAR(DistillationImpl_cuda,
          {DataType::Float32},
          {ProdConso::defaultModel, forwardKernel<float>, backwardKernel<float>});
REGISTRAR(DistillationImpl_cuda,
          {DataType::Float64},
          {ProdConso::defaultModel, forwardKernel<double>, backwardKernel<double>});

} // namespace incremental

// OperatorImpl_cuda is a class template of namespace Aidge: C++ only lets its
// members be specialised there, hence the using-directive in each body.
template <> void incremental::DistillationImpl_cuda::forward()
{
    using namespace incremental;
    const auto &op = static_cast<const Distillation_Op &>(mOp);
    const DistillationShape shape = checkDistillationInputs(
        *op.getInput(0), *op.getInput(1), op.temperature(), op.nbOld());
    const auto impl = Registrar<DistillationImpl_cuda>::create(
        getBestMatch(getRequiredSpec()));
    const std::size_t nonFinite = impl.forward(
        op.temperature(), op.form(), shape,
        cudaDataPtr(*op.getInput(0), "distillation", "student logits"),
        cudaDataPtr(*op.getInput(1), "distillation", "teacher logits"),
        cudaDataPtr(*op.getOutput(0), "distillation", "loss"));
    if (nonFinite != 0) {
        throw std::invalid_argument(fmt::format(
            "distillation: {} non-finite (NaN or inf) logits in the distilled "
            "columns of the student or teacher",
            nonFinite));
    }
}

template <> void incremental::DistillationImpl_cuda::backward()
{
    using namespace incremental;
    const auto &op = static_cast<const Distillation_Op &>(mOp);
    const DistillationShape shape = checkDistillationInputs(
        *op.getInput(0), *op.getInput(1), op.temperature(), op.nbOld());
    const auto impl = Registrar<DistillationImpl_cuda>::create(
        getBestMatch(getRequiredSpec()));
    impl.backward(op.temperature(), op.form(), shape,
                  cudaDataPtr(*op.getInput(0), "distillation", "student logits"),
                  cudaDataPtr(*op.getInput(1), "distillation", "teacher logits"),
                  cudaDataPtr(*op.getOutput(0)->grad(), "distillation", "loss gradient"),
                  cudaDataPtr(*op.getInput(0)->grad(), "distillation", "student gradient"));
}

} // namespace Aidge
