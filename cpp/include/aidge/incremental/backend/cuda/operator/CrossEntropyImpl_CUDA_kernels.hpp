/**
 * CUDA kernels of the softmax cross-entropy: host-side launchers (no Aidge
 * header, see DistillationImpl_CUDA_kernels.hpp). Same math as the CPU
 * kernels (CrossEntropyImpl_kernels.hpp), in double, one warp per row:
 *   value = 1/B sum_b sum_j y_bj (lse(s_b) - s_bj)
 *   grad  = gradLoss / B * (softmax(s_b)_j sum_k y_bk - y_bj)
 */
#ifndef AIDGE_INCREMENTAL_BACKEND_CUDA_OPERATOR_CROSSENTROPYIMPL_CUDA_KERNELS_H_
#define AIDGE_INCREMENTAL_BACKEND_CUDA_OPERATOR_CROSSENTROPYIMPL_CUDA_KERNELS_H_

#include <cstddef>

namespace Aidge {
namespace incremental {

struct CrossEntropyCudaDataCheck
{
    std::size_t nonFinite; ///< elements where the logit or the target is NaN/inf
    std::size_t negative;  ///< negative targets
};

/// Writes loss[0] (device) unless the data check finds a problem. Synchronises.
template <class T>
CrossEntropyCudaDataCheck launchCrossEntropyForward(std::size_t batch, std::size_t classes, const T *prediction,
                  const T *target, T *loss);

/// gradPrediction += gradLoss[0] * d loss / d prediction (device pointers).
template <class T>
void launchCrossEntropyBackward(std::size_t batch, std::size_t classes, const T *prediction,
              const T *target, const T *gradLoss, T *gradPrediction);

} // namespace incremental
} // namespace Aidge

#endif // AIDGE_INCREMENTAL_BACKEND_CUDA_OPERATOR_CROSSENTROPYIMPL_CUDA_KERNELS_H_
