#include "aidge/incremental/loss/Distillation.hpp"

#include <cmath>
#include <stdexcept>

#include <fmt/format.h>

#include "aidge/incremental/backend/cpu/operator/DistillationImpl_kernels.hpp"

namespace Aidge {
namespace loss {

namespace {

void *hostData(const Tensor &t) { return t.impl()->hostPtr(t.implOffset()); }

template <class T>
Tensor distillationTyped(Tensor &student,
                         const Tensor &teacher,
                         const DistillationShape &shape,
                         float temperature,
                         DistillationForm form,
                         float scaling,
                         bool accumulate)
{
    Tensor value(student.dtype());
    value.toBackend("cpu");
    value.resize({1});
    const std::size_t nonFinite = DistillationImpl_cpu_forward_kernel<T>(
        temperature, form, shape, hostData(student), hostData(teacher), hostData(value));
    if (nonFinite != 0) {
        throw std::invalid_argument(fmt::format(
            "distillation: {} non-finite (NaN or inf) logits in the distilled "
            "columns of the student or teacher",
            nonFinite));
    }
    static_cast<T *>(hostData(value))[0] *= static_cast<T>(scaling);

    const std::shared_ptr<Tensor> grad = student.grad();
    if (!accumulate) {
        grad->zeros();
    }
    const T seed = static_cast<T>(scaling);
    DistillationImpl_cpu_backward_kernel<T>(temperature, form, shape, hostData(student),
                                            hostData(teacher), &seed, hostData(*grad));
    return value;
}

} // namespace

Tensor distillation(std::shared_ptr<Tensor> &student,
                    const std::shared_ptr<Tensor> &teacher,
                    float temperature,
                    std::uint32_t nbOld,
                    DistillationForm form,
                    float scaling,
                    bool accumulate)
{
    if (!student || !teacher) {
        throw std::invalid_argument("distillation: student and teacher must be tensors");
    }
    if (!std::isfinite(scaling)) {
        throw std::invalid_argument(
            fmt::format("distillation: scaling must be finite, got {}", scaling));
    }
    const DistillationShape shape =
        checkDistillationInputs(*student, *teacher, temperature, nbOld);
    if (student->backend() != "cpu" || teacher->backend() != "cpu") {
        throw std::invalid_argument(fmt::format(
            "distillation: logits must be on the 'cpu' backend (student on '{}', "
            "teacher on '{}')",
            student->backend(), teacher->backend()));
    }
    if (student->dtype() == DataType::Float64) {
        return distillationTyped<double>(*student, *teacher, shape, temperature, form,
                                         scaling, accumulate);
    }
    return distillationTyped<float>(*student, *teacher, shape, temperature, form,
                                    scaling, accumulate);
}

} // namespace loss
} // namespace Aidge
