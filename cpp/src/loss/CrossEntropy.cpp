#include "aidge/incremental/loss/CrossEntropy.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace Aidge {
namespace loss {

namespace {

void *hostData(const Tensor &t) { return t.impl()->hostPtr(t.implOffset()); }

void checkTensor(const Tensor &x, const char *which)
{
    if (!x.impl() || x.backend() != "cpu") {
        throw std::invalid_argument(fmt::format("cross-entropy: {} must be a tensor on the 'cpu' backend", which));
    }
    if (x.nbDims() != 2 || x.dims()[0] == 0 || x.dims()[1] == 0) {
        throw std::invalid_argument(fmt::format(
            "cross-entropy: {} must be 2-D [batch, classes] and not empty, got shape {}", which, x.dims()));
    }
    if (x.dtype() != DataType::Float32 && x.dtype() != DataType::Float64) {
        throw std::invalid_argument(fmt::format("cross-entropy: {} must be float32 or float64, got {}", which, x.dtype()));
    }
    if (!x.isContiguous()) {
        throw std::invalid_argument(fmt::format("cross-entropy: {} must be contiguous", which));
    }
}

template <class T, class Y>
Tensor crossEntropyTyped(Tensor &prediction, const Tensor &target, float scaling, bool accumulate)
{
    const std::size_t batch = prediction.dims()[0], classes = prediction.dims()[1];
    const T *s = static_cast<const T *>(hostData(prediction));
    const Y *y = static_cast<const Y *>(hostData(target));
    for (std::size_t i = 0; i < batch * classes; ++i) {
        if (!std::isfinite(static_cast<double>(s[i])) || !std::isfinite(static_cast<double>(y[i]))) {
            throw std::invalid_argument("cross-entropy: non-finite (NaN or inf) logits or targets");
        }
        if (y[i] < 0) {
            throw std::invalid_argument("cross-entropy: targets must be probabilities (>= 0)");
        }
    }
    const std::shared_ptr<Tensor> grad = prediction.grad();
    if (!accumulate) {
        grad->zeros();
    }
    T *g = static_cast<T *>(hostData(*grad));
    const double coef = static_cast<double>(scaling) / static_cast<double>(batch);
    double total = 0.0;
    for (std::size_t b = 0; b < batch; ++b) {
        const T *sr = s + b * classes;
        const Y *yr = y + b * classes;
        double m = -std::numeric_limits<double>::infinity();
        for (std::size_t j = 0; j < classes; ++j) {
            m = std::max(m, static_cast<double>(sr[j]));
        }
        double sum = 0.0, ySum = 0.0;
        for (std::size_t j = 0; j < classes; ++j) {
            sum += std::exp(static_cast<double>(sr[j]) - m);
            ySum += static_cast<double>(yr[j]);
        }
        const double lse = m + std::log(sum);
        for (std::size_t j = 0; j < classes; ++j) {
            const double logp = static_cast<double>(sr[j]) - lse;
            total -= static_cast<double>(yr[j]) * logp;
            g[b * classes + j] += static_cast<T>(coef * (std::exp(logp) * ySum - static_cast<double>(yr[j])));
        }
    }
    Tensor value(prediction.dtype());
    value.toBackend("cpu");
    value.resize({1});
    static_cast<T *>(hostData(value))[0] = static_cast<T>(total * coef);
    return value;
}

} // namespace

Tensor crossEntropy(std::shared_ptr<Tensor> &prediction, const std::shared_ptr<Tensor> &target,
                    float scaling, bool accumulate)
{
    if (!prediction || !target) {
        throw std::invalid_argument("cross-entropy: prediction and target must be tensors");
    }
    checkTensor(*prediction, "prediction");
    checkTensor(*target, "target");
    if (prediction->dims() != target->dims()) {
        throw std::invalid_argument(fmt::format("cross-entropy: prediction {} and target {} shapes differ",
                                                prediction->dims(), target->dims()));
    }
    if (!std::isfinite(scaling)) {
        throw std::invalid_argument("cross-entropy: scaling must be finite");
    }
    const bool p64 = prediction->dtype() == DataType::Float64;
    const bool y64 = target->dtype() == DataType::Float64;
    if (p64) {
        return y64 ? crossEntropyTyped<double, double>(*prediction, *target, scaling, accumulate)
                   : crossEntropyTyped<double, float>(*prediction, *target, scaling, accumulate);
    }
    return y64 ? crossEntropyTyped<float, double>(*prediction, *target, scaling, accumulate)
               : crossEntropyTyped<float, float>(*prediction, *target, scaling, accumulate);
}

} // namespace loss
} // namespace Aidge
