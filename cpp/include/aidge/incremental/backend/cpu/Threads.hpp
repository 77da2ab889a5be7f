/**
 * When a fast kernel wakes the OpenMP team. Below these sizes a kernel runs on
 * the calling thread alone: waking the team and meeting at its closing barrier
 * costs microseconds on a quiet machine, and a whole time slice on a busy one
 * (a worker the OS has descheduled holds every other thread at the barrier).
 * Small models (the digits MLP: every operation under 1 M multiply-adds) then
 * never wait on a barrier; a ResNet's operations (tens of M) still split.
 * The waiting policy of the team (how long an idle worker spins before it
 * sleeps) is set in aidge_incremental/backend/_openmp_preload.py.
 */
#ifndef AIDGE_INCREMENTAL_BACKEND_CPU_THREADS_H_
#define AIDGE_INCREMENTAL_BACKEND_CPU_THREADS_H_

namespace Aidge {
namespace incremental {

/// Multiply-adds of a product-bound kernel (about 30-70 us on one core).
constexpr long kParallelMinMacs = 1L << 20;
/// Floats touched by a memory-bound kernel (elementwise, BatchNorm, pooling,
/// padding: about 30-60 us on one core).
constexpr long kParallelMinFloats = 1L << 17;

} // namespace incremental
} // namespace Aidge

#endif // AIDGE_INCREMENTAL_BACKEND_CPU_THREADS_H_
