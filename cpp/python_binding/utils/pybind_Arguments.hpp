// Conversions shared by the bindings: Python arguments to C++ values, with
// errors that name the function, the argument and what it accepts (instead
// of pybind11's list of overloads), and C++ results to NumPy arrays.
#ifndef AIDGE_INCREMENTAL_PYBIND_ARGUMENTS_H_
#define AIDGE_INCREMENTAL_PYBIND_ARGUMENTS_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include "aidge/incremental/memory/StoredSamples.hpp"
#include "aidge/incremental/operator/Distillation.hpp"

namespace Aidge {
namespace incremental {

namespace py = pybind11;

using FloatMatrix = py::array_t<float, py::array::c_style | py::array::forcecast>;
using LabelVector = py::array_t<std::int64_t, py::array::c_style | py::array::forcecast>;

// ------------------------------------------------------------- distillation --

/// "kl" / "bce" or a DistillationForm value.
DistillationForm formFromPy(const py::object &form);

/// n_old comes from Python as an int: refuse negatives with a clear message
/// rather than pybind11's generic "incompatible function arguments".
std::uint32_t nbOldFromPy(long long nbOld);

// ---------------------------------------------------------- integers, arrays --

/// A Python integer (or anything with __index__, e.g. np.int64) in [lo, hi].
std::int64_t intArg(const py::handle &h, const char *fn, const char *name, std::int64_t lo,
                    std::int64_t hi);

/// A count or size: an integer in [lo, hi].
std::size_t sizeArg(const py::handle &h, const char *fn, const char *name, std::int64_t lo = 0,
                    std::int64_t hi = std::int64_t{1} << 62);

/// Seeds are any integer in [0, 2^64).
std::uint64_t seedArg(const py::handle &h, const char *fn, const char *name);

/// An array of a plain numeric dtype (not complex, not object/string).
py::array numericArray(const py::handle &h, const char *fn, const char *name);

/// A 2-D float32 matrix; finite values beyond float32's range are refused
/// (a cast would turn them into inf), NaN/inf are left to the core's check.
FloatMatrix floatMatrix(const py::handle &h, const char *fn, const char *name);

/// A vector of int64 labels from any integer array (uint64 >= 2^63 refused).
LabelVector labelVector(const py::handle &h, const char *fn, const char *name);

/// A sample shape: a sequence of at most 32 integers >= 1.
std::vector<std::size_t> shapeArg(const py::handle &h, const char *fn, const char *name);

/// Indices or labels as an int64 NumPy vector.
template <class T> py::array_t<std::int64_t> toNumpy(const std::vector<T> &v)
{
    py::array_t<std::int64_t> out(static_cast<py::ssize_t>(v.size()));
    auto *p = out.mutable_data();
    for (std::size_t i = 0; i < v.size(); ++i) {
        p[i] = static_cast<std::int64_t>(v[i]);
    }
    return out;
}

// ------------------------------------------------------------ stored samples --

/// The layout of samples of this shape and NumPy dtype (ValueError/TypeError
/// naming 'dtype' / 'sample_shape').
SampleLayout layoutFrom(const std::vector<std::size_t> &shape, const py::object &dtype);

/// Declared extra arrays: None (none) or a mapping {name: initial width}.
std::vector<std::pair<std::string, std::size_t>> extraWidthsArg(const py::handle &h, const char *fn,
                                                                const char *name);

/// A batch's extra arrays, in the memory's declared order, with the arrays
/// that hold their values (kept alive as long as the inputs are used).
struct ExtraInputs
{
    std::vector<FloatMatrix> arrays;
    std::vector<ExtraInput> inputs;
};

/// None or {} when the memory declares no extra array; else a mapping
/// {name: float32 matrix [count, columns]} naming every declared array.
ExtraInputs extraInputsArg(const py::handle &h, const SampleExtras &declared, std::size_t count,
                           const char *fn, const char *name);

/// (values [rows, width] float32, valid columns [rows] int64): copies of an extra array.
py::tuple extraArrayToNumpy(const SampleExtras &extras, const std::string &name);

/// {name: width} of the declared extra arrays.
py::dict extraWidthsToPy(const SampleExtras &extras);

/// Raw bytes of count samples in a C-contiguous array of the layout's type.
const std::uint8_t *sampleBytes(const py::array &samples, const SampleLayout &layout,
                                std::size_t &count);

/// A read-only NumPy view of count samples in buf, keeping buf alive.
template <class Buffer>
py::array samplesView(const std::shared_ptr<Buffer> &buf, std::size_t count,
                      const SampleLayout &layout)
{
    std::vector<py::ssize_t> shape{static_cast<py::ssize_t>(count)};
    for (std::size_t dim : layout.shape) {
        shape.push_back(static_cast<py::ssize_t>(dim));
    }
    auto *holder = new std::shared_ptr<Buffer>(buf);
    py::capsule base(holder, [](void *p) { delete static_cast<std::shared_ptr<Buffer> *>(p); });
    py::array view(py::dtype(layout.dtype), shape, static_cast<const void *>(buf->data()), base);
    py::detail::array_proxy(view.ptr())->flags &= ~py::detail::npy_api::NPY_ARRAY_WRITEABLE_;
    return view;
}

} // namespace incremental
} // namespace Aidge

#endif // AIDGE_INCREMENTAL_PYBIND_ARGUMENTS_H_
