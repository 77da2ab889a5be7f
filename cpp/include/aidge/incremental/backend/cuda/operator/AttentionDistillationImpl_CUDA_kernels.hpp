/**
 * CUDA kernels of the attention-distillation loss (LwM): host-side launchers
 * (no Aidge header, see DistillationImpl_CUDA_kernels.hpp). Same math as the
 * CPU kernels (AttentionDistillationImpl_kernels.hpp), in double, one block
 * per sample; the student map z = sum_c alpha_c A_c goes to a device scratch
 * buffer of B * H * W doubles.
 */
#ifndef AIDGE_INCREMENTAL_BACKEND_CUDA_OPERATOR_ATTENTIONDISTILLATIONIMPL_CUDA_KERNELS_H_
#define AIDGE_INCREMENTAL_BACKEND_CUDA_OPERATOR_ATTENTIONDISTILLATIONIMPL_CUDA_KERNELS_H_

#include <cstddef>

namespace Aidge {
namespace incremental {

/// Writes loss[0] (device); returns the number of non-finite values met in
/// features, weights and teacher map (then loss is untouched). Synchronises.
template <class T>
std::size_t launchAttentionDistillationForward(double epsilon, std::size_t batch, std::size_t channels,
                    std::size_t pixels, const T *features, const T *weights,
                    const T *teacherMap, T *loss);

/// gradFeatures += gradLoss[0] * dL/dA (alpha fixed) and gradWeights +=
/// gradLoss[0] * dL/dalpha (A fixed).
template <class T>
void launchAttentionDistillationBackward(double epsilon, std::size_t batch, std::size_t channels, std::size_t pixels,
              const T *features, const T *weights, const T *teacherMap, const T *gradLoss,
              T *gradFeatures, T *gradWeights);

} // namespace incremental
} // namespace Aidge

#endif // AIDGE_INCREMENTAL_BACKEND_CUDA_OPERATOR_ATTENTIONDISTILLATIONIMPL_CUDA_KERNELS_H_
