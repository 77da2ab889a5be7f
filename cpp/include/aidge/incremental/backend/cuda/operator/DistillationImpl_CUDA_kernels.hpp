/**
 * CUDA kernels of the distillation loss: host-side launchers.
 *
 * This header is shared by the .cu file (compiled by nvcc) and the
 * registration in DistillationImpl.cpp (compiled by the host compiler), so it
 * includes no Aidge header: nvcc never has to parse Aidge's templates.
 * Pointers are device pointers; launches go to the legacy default stream,
 * the one Aidge's CUDA backend uses, so they are ordered with its kernels.
 *
 * Same math as the CPU kernels (DistillationImpl_kernels.hpp): double
 * arithmetic whatever the storage type, log-sum-exp per row, rows summed in a
 * fixed order (the result does not depend on scheduling).
 */
#ifndef AIDGE_INCREMENTAL_BACKEND_CUDA_OPERATOR_DISTILLATIONIMPL_CUDA_KERNELS_H_
#define AIDGE_INCREMENTAL_BACKEND_CUDA_OPERATOR_DISTILLATIONIMPL_CUDA_KERNELS_H_

#include <cstddef>

namespace Aidge {
namespace incremental {

/// Plain-type view of DistillationShape plus the form, for the launchers.
struct DistillationCudaProblem
{
    std::size_t batch;
    std::size_t studentCols;
    std::size_t teacherCols;
    std::size_t nbOld;
    double temperature;
    bool kl; ///< true: KL form (Hinton), false: BCE form (iCaRL)
};

/**
 * Writes the loss to loss[0] (device). Returns the number of non-finite
 * logits in the distilled columns; when it is not 0 loss is left untouched.
 * Synchronises (the count is read back). Throws std::runtime_error on a CUDA
 * error.
 */
template <class T>
std::size_t launchDistillationForward(const DistillationCudaProblem &p, const T *student, const T *teacher, T *loss);

/// gradStudent[b, j] += gradLoss[0] * d loss / d s[b, j], j < nbOld.
template <class T>
void launchDistillationBackward(const DistillationCudaProblem &p, const T *student, const T *teacher,
              const T *gradLoss, T *gradStudent);

} // namespace incremental
} // namespace Aidge

#endif // AIDGE_INCREMENTAL_BACKEND_CUDA_OPERATOR_DISTILLATIONIMPL_CUDA_KERNELS_H_
