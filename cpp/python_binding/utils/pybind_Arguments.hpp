// Conversions shared by the bindings: Python arguments to C++ values, with
// errors that name the function, the argument, the value given and what it
// accepts (instead of pybind11's list of overloads), and C++ results to NumPy
// arrays. Every binding takes its arguments as py::object and converts them
// here; nameArgumentErrors() turns what pybind11 itself still refuses (a
// missing, extra or unknown argument; a method called on the wrong object)
// into messages of the same kind.
#ifndef AIDGE_INCREMENTAL_PYBIND_ARGUMENTS_H_
#define AIDGE_INCREMENTAL_PYBIND_ARGUMENTS_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <pybind11/functional.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "aidge/data/Tensor.hpp"
#include "aidge/graph/GraphView.hpp"
#include "aidge/graph/Node.hpp"
#include "aidge/incremental/memory/StoredSamples.hpp"
#include "aidge/incremental/operator/Distillation.hpp"
#include "aidge/utils/Registrar.hpp"

namespace Aidge {
namespace incremental {

namespace py = pybind11;

using FloatMatrix = py::array_t<float, py::array::c_style | py::array::forcecast>;
using LabelVector = py::array_t<std::int64_t, py::array::c_style | py::array::forcecast>;

/// "float 1.5", "str 'x'", "None": how an error shows the value it was given.
std::string describe(const py::handle &h);

// ------------------------------------------------------------------ scalars --

/// An interval of accepted floats; open ends excluded.
struct FloatRange {
    double lo;
    double hi;
    bool loOpen = false;
    bool hiOpen = false;
};

/// Finite float32 values of either sign.
FloatRange anyFloat32();
/// Normal positive float32 values (1/x is finite): temperatures, epsilons.
FloatRange positiveFloat32();

/// A real number (not a bool, not a string) that is finite and in `range`.
double floatArg(const py::handle &h, const char *fn, const char *name, const FloatRange &range);

/// True or False (a Python or NumPy bool).
bool boolArg(const py::handle &h, const char *fn, const char *name);

/// A str.
std::string strArg(const py::handle &h, const char *fn, const char *name);

/// A filesystem path: a str or an os.PathLike giving one.
std::string pathArg(const py::handle &h, const char *fn, const char *name);

/// bytes, bytearray or a contiguous buffer of bytes, copied.
std::vector<std::uint8_t> bytesArg(const py::handle &h, const char *fn, const char *name);

/// "kl" / "bce" or a DistillationForm value.
DistillationForm formArg(const py::handle &h, const char *fn, const char *name);

// ---------------------------------------------------------- integers, arrays --

/// A Python integer (or anything with __index__, e.g. np.int64) in [lo, hi].
std::int64_t intArg(const py::handle &h, const char *fn, const char *name, std::int64_t lo,
                    std::int64_t hi);

/// A count or size: an integer in [lo, hi].
std::size_t sizeArg(const py::handle &h, const char *fn, const char *name, std::int64_t lo = 0,
                    std::int64_t hi = std::int64_t{1} << 62);

/// Seeds are any integer in [0, 2^64).
std::uint64_t seedArg(const py::handle &h, const char *fn, const char *name);

/// A NumPy array (or what NumPy reads as one), of any dtype.
py::array arrayArg(const py::handle &h, const char *fn, const char *name);

/// An array of a plain numeric dtype (not complex, not object/string).
py::array numericArray(const py::handle &h, const char *fn, const char *name);

/// A 2-D float32 matrix; finite values beyond float32's range are refused
/// (a cast would turn them into inf), NaN/inf are left to the core's check.
FloatMatrix floatMatrix(const py::handle &h, const char *fn, const char *name);

/// A vector of int64 labels from any integer array (uint64 >= 2^63 refused).
LabelVector labelVector(const py::handle &h, const char *fn, const char *name);

/// A sample shape: a sequence of at most 32 integers >= 1.
std::vector<std::size_t> shapeArg(const py::handle &h, const char *fn, const char *name);

/// A list or tuple (not a str, bytes or array), as a list.
py::list sequenceArg(const py::handle &h, const char *fn, const char *name);

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

// -------------------------------------------------------------- Aidge objects --

/// An aidge_core.Tensor (never None).
std::shared_ptr<Tensor> tensorArg(const py::handle &h, const char *fn, const char *name);

/// A list or tuple of aidge_core.Tensor.
std::vector<std::shared_ptr<Tensor>> tensorListArg(const py::handle &h, const char *fn,
                                                   const char *name);

/// An aidge_core.Node (never None).
std::shared_ptr<Node> nodeArg(const py::handle &h, const char *fn, const char *name);

/// An aidge_core.GraphView (never None).
std::shared_ptr<GraphView> graphArg(const py::handle &h, const char *fn, const char *name);

// ------------------------------------------------------------ stored samples --

/// The layout of samples of this shape and NumPy dtype (ValueError/TypeError
/// naming 'dtype' / 'sample_shape').
SampleLayout layoutFrom(const std::vector<std::size_t> &shape, const py::object &dtype,
                        const char *fn);

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
py::tuple extraArrayToNumpy(const SampleExtras &extras, const py::handle &name);

/// {name: width} of the declared extra arrays.
py::dict extraWidthsToPy(const SampleExtras &extras);

/// Raw bytes of count samples in a C-contiguous array of the layout's type.
/// (`given`: what the caller passed, shown in messages; default `samples`.)
const std::uint8_t *sampleBytes(const py::array &samples, const SampleLayout &layout,
                                std::size_t &count, const char *fn, const char *name,
                                const py::handle &given = py::handle());

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

// ------------------------------------------------------------ core errors --

/// The arguments of a call, by name, for coreCall's messages.
using NamedArguments = std::initializer_list<std::pair<const char *, py::handle>>;

/// "'label' = int 3, 'samples' = an array of shape (2, 2) and dtype uint8".
std::string describeArguments(NamedArguments args);

/// Runs a call into the core; a refusal of the core (std::invalid_argument: a
/// value that does not fit the memory's state, the tensors' shapes...) becomes a
/// ValueError that names the function and shows the arguments given.
template <class F> decltype(auto) coreCall(const char *fn, NamedArguments args, F &&f)
{
    try {
        return f();
    } catch (const std::invalid_argument &e) {
        throw py::value_error(fmt::format("{}: {} (given {})", fn, e.what(), describeArguments(args)));
    }
}

// ------------------------------------------------------------- registries --

/// What Aidge's declare_registrable binds (register_X, get_keys_X,
/// get_key_value_X), with named arguments that are checked: an unknown key is
/// a ValueError listing the known ones, a function must be callable.
template <class C> void declareRegistrable(py::module &m, const std::string &className)
{
    using Key = typename C::registrar_key;
    using Function = typename C::registrar_type;
    const std::string registerName = "register_" + className;
    const std::string valueName = "get_key_value_" + className;
    m.def(
        registerName.c_str(),
        [registerName](const py::object &key, const py::object &function) {
            const std::string k = strArg(key, registerName.c_str(), "key");
            if (k.empty() || k.find('\0') != std::string::npos) {
                throw py::value_error(fmt::format("{}: argument 'key' must be a non-empty backend name without NUL, "
                                                  "got {}", registerName, describe(key)));
            }
            if (!PyCallable_Check(function.ptr())) {
                throw py::type_error(fmt::format("{}: argument 'function' must be callable (operator -> "
                                                 "implementation), got {}",
                                                 registerName, describe(function)));
            }
            Registrar<C>(Key(k), function.cast<Function>());
        },
        py::arg("key"), py::arg("function"));
    m.def(("get_keys_" + className).c_str(), []() {
        const auto keys = Registrar<C>::getKeys();
        return std::vector<Key>(keys.begin(), keys.end());
    });
    m.def(
        valueName.c_str(),
        [valueName](const py::object &key) {
            const std::string k = strArg(key, valueName.c_str(), "key");
            if (!Registrar<C>::exists(Key(k))) {
                const auto keys = Registrar<C>::getKeys();
                const std::vector<Key> known(keys.begin(), keys.end());
                throw py::value_error(fmt::format("{}: argument 'key' must be one of the registered keys {}, got {}",
                                                  valueName, std::string(py::repr(py::cast(known))), describe(key)));
            }
            return Registrar<C>::create(Key(k));
        },
        py::arg("key"));
}

// -------------------------------------------------- what pybind11 refuses --

/// Wraps every function of `m` and every method of the classes defined in it
/// so that pybind11's "incompatible function arguments" (a missing, extra or
/// unknown argument, a method called on another object) becomes a TypeError
/// naming the argument (aidge_incremental/_arguments.py writes it). The
/// wrappers keep the functions' names and docstrings (their signatures).
void nameArgumentErrors(py::module &m);

} // namespace incremental
} // namespace Aidge

#endif // AIDGE_INCREMENTAL_PYBIND_ARGUMENTS_H_
