#include "aidge/incremental/backend/cpu/FastSGD.hpp"

#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>

#include <fmt/format.h>

#include "aidge/incremental/backend/cpu/FastImpl.hpp"

namespace Aidge {
namespace incremental {

FastSGD::FastSGD(std::vector<std::shared_ptr<Tensor>> parameters, float momentum, float weightDecay)
    : mMomentum(momentum), mWeightDecay(weightDecay)
{
    if (!(momentum >= 0.0f && momentum < 1.0f)) {
        throw std::invalid_argument(fmt::format("FastSGD: momentum must be in [0, 1), got {}", momentum));
    }
    if (!(weightDecay >= 0.0f) || !std::isfinite(weightDecay)) {
        throw std::invalid_argument(fmt::format("FastSGD: weight_decay must be finite and >= 0, got {}", weightDecay));
    }
    for (std::size_t i = 0; i < parameters.size(); ++i) {
        const auto &p = parameters[i];
        if (!isCpuFloat32(p) || !p->isContiguous()) {
            throw std::invalid_argument(fmt::format(
                "FastSGD: parameter #{} is not a contiguous float32 tensor on the cpu backend", i));
        }
    }
    mParameters = std::move(parameters);
    mVelocity.resize(mParameters.size());
}

void FastSGD::resetGrad()
{
    for (const auto &p : mParameters) {
        const auto g = p->grad();
        if (isCpuFloat32(g) && g->isContiguous() && g->size() == p->size()) {
            std::memset(floatPtr(g, "FastSGD", "gradient"), 0, sizeof(float) * g->size());
        } else {
            g->zeros();
        }
    }
}

void FastSGD::update(float lr)
{
    if (!std::isfinite(lr)) {
        throw std::invalid_argument(fmt::format("FastSGD: learning rate must be finite, got {}", lr));
    }
    // every check first: a call that throws changes nothing
    std::vector<float *> params, grads;
    for (std::size_t i = 0; i < mParameters.size(); ++i) {
        const auto &p = mParameters[i];
        const auto g = p->grad();
        if (!isCpuFloat32(p) || !isCpuFloat32(g) || !p->isContiguous() || !g->isContiguous() ||
            g->size() != p->size()) {
            throw std::runtime_error(fmt::format(
                "FastSGD: parameter #{} or its gradient is no longer a float32 cpu tensor of {} values",
                i, p->size()));
        }
        params.push_back(floatPtr(p, "FastSGD", "parameter"));
        grads.push_back(floatPtr(g, "FastSGD", "gradient"));
    }
    const bool first = mStep == 0;
    for (std::size_t i = 0; i < params.size(); ++i) {
        const long n = static_cast<long>(mParameters[i]->size());
        float *p = params[i];
        const float *g = grads[i];
        const float wd = mWeightDecay, mu = mMomentum;
        if (mu == 0.0f) {
#pragma omp parallel for simd schedule(static) if (n > 65536)
            for (long j = 0; j < n; ++j) {
                p[j] -= lr * (g[j] + wd * p[j]);
            }
            continue;
        }
        std::vector<float> &velocity = mVelocity[i];
        if (velocity.size() != static_cast<std::size_t>(n)) {
            velocity.assign(static_cast<std::size_t>(n), 0.0f);
        }
        float *v = velocity.data();
        const float keep = first ? 0.0f : mu; // the first update starts the velocity at d
#pragma omp parallel for simd schedule(static) if (n > 65536)
        for (long j = 0; j < n; ++j) {
            const float d = g[j] + wd * p[j];
            v[j] = keep * v[j] + d;
            p[j] -= lr * v[j];
        }
    }
    ++mStep;
}

} // namespace incremental
} // namespace Aidge
