#include <array>
#include <cstdint>
#include <stdexcept>
#include <string>

#include <fmt/format.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "aidge/graph/GraphView.hpp"
#include "aidge/graph/Node.hpp"
#include "aidge/incremental/backend/cpu/Accelerate.hpp"
#include "aidge/incremental/backend/cpu/Blas.hpp"
#include "aidge/incremental/backend/cpu/ConvAlgorithms.hpp"
#include "aidge/incremental/backend/cpu/FastKernelRegistry.hpp"
#include "aidge/incremental/backend/cpu/operator/FastBatchNormImpl.hpp"
#include "../../utils/pybind_Arguments.hpp"

namespace py = pybind11;

namespace Aidge {
namespace incremental {

namespace {

using FloatArray = py::array_t<float, py::array::c_style | py::array::forcecast>;

/// A float32 C-contiguous copy (or view) of a numeric array argument.
FloatArray floatArrayArg(const py::handle &h, const char *fn, const char *name)
{
    return FloatArray::ensure(numericArray(h, fn, name));
}

/// N integers >= lo given as a sequence (stride, padding).
template <std::size_t N> std::array<int, N> intsArg(const py::handle &h, const char *fn, const char *name, int lo)
{
    const py::list items = sequenceArg(h, fn, name);
    if (items.size() != N) {
        throw py::value_error(fmt::format("{}: argument '{}' must hold {} integers, got {}", fn, name, N,
                                          describe(h)));
    }
    std::array<int, N> out{};
    for (std::size_t i = 0; i < N; ++i) {
        const std::string item = fmt::format("{}[{}]", name, i);
        out[i] = static_cast<int>(intArg(items[i], fn, item.c_str(), lo, 1 << 20));
    }
    return out;
}

/// The shape of a convolution of x [N, C, H, W] by w [O, C, KH, KW]; throws
/// ValueError naming the argument at fault.
ConvShape convShapeOf(const char *fn, const FloatArray &x, const FloatArray &w, const std::array<int, 2> &stride,
                      const std::array<int, 4> &padding)
{
    if (x.ndim() != 4 || x.size() == 0) {
        throw py::value_error(fmt::format("{}: argument 'x' must be a non-empty [N, C, H, W] array, got {}-D of "
                                          "{} values", fn, x.ndim(), x.size()));
    }
    if (w.ndim() != 4 || w.shape(1) != x.shape(1) || w.size() == 0) {
        throw py::value_error(fmt::format("{}: argument 'w' must be a non-empty [O, C = {}, KH, KW] array, got {}-D "
                                          "of {} values", fn, x.shape(1), w.ndim(), w.size()));
    }
    ConvShape s{};
    s.N = static_cast<int>(x.shape(0));
    s.C = static_cast<int>(x.shape(1));
    s.H = static_cast<int>(x.shape(2));
    s.W = static_cast<int>(x.shape(3));
    s.O = static_cast<int>(w.shape(0));
    s.KH = static_cast<int>(w.shape(2));
    s.KW = static_cast<int>(w.shape(3));
    s.SH = stride[0];
    s.SW = stride[1];
    s.PT = padding[0];
    s.PL = padding[1];
    s.PB = padding[2];
    s.PR = padding[3];
    const int hp = s.H + s.PT + s.PB - s.KH, wp = s.W + s.PL + s.PR - s.KW;
    if (hp < 0 || wp < 0) {
        throw py::value_error(fmt::format("{}: argument 'w': its {}x{} kernel is larger than the padded {}x{} input",
                                          fn, s.KH, s.KW, s.H + s.PT + s.PB, s.W + s.PL + s.PR));
    }
    s.HO = hp / s.SH + 1;
    s.WO = wp / s.SW + 1;
    return s;
}

/// "auto" (the autotuned choice) or an algorithm that applies to s.
bool algorithmArg(const char *fn, const std::string &name, const ConvShape &s, ConvAlgorithm &out)
{
    if (name == "auto") {
        return false;
    }
    try {
        out = convAlgorithmFromName(name);
    } catch (const std::invalid_argument &e) {
        throw py::value_error(fmt::format("{}: argument 'algorithm': {} (or 'auto')", fn, e.what()));
    }
    if (!convAlgorithmApplies(out, s)) {
        throw py::value_error(fmt::format("{}: argument 'algorithm': '{}' does not apply to a {}x{} kernel with stride {}x{}",
                                          fn, name, s.KH, s.KW, s.SH, s.SW));
    }
    return true;
}

} // namespace

void init_Accelerate(py::module &m)
{
    m.def("accelerate", [](const py::object &graph) { return accelerate(graphArg(graph, "accelerate", "graph")); },
          py::arg("graph"),
          "Gives our fast float32 CPU implementation to every supported node of "
          "the graph (and of its meta-operators' micro-graphs); returns how many "
          "nodes changed.");
    m.def("is_accelerated", [](const py::object &node) { return isAccelerated(nodeArg(node, "is_accelerated", "node")); },
          py::arg("node"),
          "Whether the node runs one of aidge_incremental's fast implementations.");
    m.def("is_fused_away", [](const py::object &node) { return isFusedAway(nodeArg(node, "is_fused_away", "node")); },
          py::arg("node"),
          "Whether the node's output is not computed: its kernel is fused into its child's (a "
          "BatchNorm2D fused with the ReLU it feeds).");
    m.def("unsupported_reason",
          [](const py::object &node) { return unsupportedReason(nodeArg(node, "unsupported_reason", "node")); },
          py::arg("node"),
          "Why accelerate() leaves this node on Aidge's kernel ('' when it would not).");
    m.def("fast_kernels", &FastKernelRegistry::types,
          "Operator types that have a fast kernel (the table accelerate() walks), sorted.");
    m.def("blas_config", []() { return std::string(scipy_openblas_get_config()); },
          "Build configuration string of the OpenBLAS the fast kernels call.");
    m.def("blas_core_name", []() { return std::string(blasCoreName()); },
          "The OpenBLAS kernels in use (its choice for this CPU unless OPENBLAS_CORETYPE forces one).");

    m.def(
        "conv2d_forward",
        [](const py::object &xArg, const py::object &wArg, const py::object &bias, const py::object &strideArg,
           const py::object &paddingArg, const py::object &algorithmArg_) {
            const char *fn = "conv2d_forward";
            const FloatArray x = floatArrayArg(xArg, fn, "x"), w = floatArrayArg(wArg, fn, "w");
            const auto stride = intsArg<2>(strideArg, fn, "stride", 1);
            const auto padding = intsArg<4>(paddingArg, fn, "padding", 0);
            const std::string algorithm = strArg(algorithmArg_, fn, "algorithm");
            const ConvShape s = convShapeOf(fn, x, w, stride, padding);
            FloatArray b;
            if (!bias.is_none()) {
                b = floatArrayArg(bias, fn, "bias");
                if (b.ndim() != 1 || b.shape(0) != s.O) {
                    throw py::value_error(fmt::format("conv2d_forward: argument 'bias' must hold O = {} values, got {}",
                                                      s.O, describe(bias)));
                }
            }
            ConvAlgorithm chosen{};
            const bool fixed = algorithmArg("conv2d_forward", algorithm, s, chosen);
            FloatArray y({s.N, s.O, s.HO, s.WO});
            const float *bp = bias.is_none() ? nullptr : b.data();
            float *yp = y.mutable_data();
            {
                py::gil_scoped_release release;
                if (fixed) {
                    convForwardWith(chosen, s, x.data(), w.data(), bp, yp);
                } else {
                    convForward(s, x.data(), w.data(), bp, yp);
                }
            }
            return y;
        },
        py::arg("x"), py::arg("w"), py::arg("bias") = py::none(), py::arg("stride") = py::make_tuple(1, 1),
        py::arg("padding") = py::make_tuple(0, 0, 0, 0), py::arg("algorithm") = "auto",
        "The fast kernels' float32 convolution of x [N, C, H, W] by w [O, C, KH, KW] (padding: top, left, "
        "bottom, right), by the autotuned algorithm or a given one (im2col, shifted, winograd2, winograd4). "
        "For tests and benchmarks; models use it through accelerate().");
    m.def(
        "conv2d_backward",
        [](const py::object &xArg, const py::object &wArg, const py::object &dyArg, const py::object &strideArg,
           const py::object &paddingArg, const py::object &algorithmArg_, const py::object &biasArg) {
            const char *fn = "conv2d_backward";
            const FloatArray x = floatArrayArg(xArg, fn, "x"), w = floatArrayArg(wArg, fn, "w");
            const FloatArray dy = floatArrayArg(dyArg, fn, "dy");
            const auto stride = intsArg<2>(strideArg, fn, "stride", 1);
            const auto padding = intsArg<4>(paddingArg, fn, "padding", 0);
            const std::string algorithm = strArg(algorithmArg_, fn, "algorithm");
            const bool bias = boolArg(biasArg, fn, "bias");
            const ConvShape s = convShapeOf(fn, x, w, stride, padding);
            if (dy.ndim() != 4 || dy.shape(0) != s.N || dy.shape(1) != s.O || dy.shape(2) != s.HO ||
                dy.shape(3) != s.WO) {
                throw py::value_error(fmt::format("conv2d_backward: argument 'dy' must be [{}, {}, {}, {}], got {}",
                                                  s.N, s.O, s.HO, s.WO, describe(dyArg)));
            }
            ConvAlgorithm chosen{};
            const bool fixed = algorithmArg("conv2d_backward", algorithm, s, chosen);
            FloatArray dx({s.N, s.C, s.H, s.W}), dw({s.O, s.C, s.KH, s.KW});
            FloatArray db(std::vector<py::ssize_t>{bias ? s.O : 0});
            std::fill(dx.mutable_data(), dx.mutable_data() + dx.size(), 0.0f);
            std::fill(dw.mutable_data(), dw.mutable_data() + dw.size(), 0.0f);
            std::fill(db.mutable_data(), db.mutable_data() + db.size(), 0.0f);
            float *dxp = dx.mutable_data(), *dwp = dw.mutable_data(), *dbp = bias ? db.mutable_data() : nullptr;
            {
                py::gil_scoped_release release;
                if (fixed) {
                    convBackwardWith(chosen, s, x.data(), w.data(), dy.data(), dxp, dwp, dbp);
                } else {
                    convBackward(s, x.data(), w.data(), dy.data(), dxp, dwp, dbp);
                }
            }
            return py::make_tuple(dx, dw, bias ? py::object(db) : py::object(py::none()));
        },
        py::arg("x"), py::arg("w"), py::arg("dy"), py::arg("stride") = py::make_tuple(1, 1),
        py::arg("padding") = py::make_tuple(0, 0, 0, 0), py::arg("algorithm") = "auto",
        py::arg("bias") = false,
        "Gradients (dx, dw, db or None) of conv2d_forward for the output gradient dy.");
    m.def("conv_algorithms", []() {
              return std::vector<std::string>{"im2col", "shifted", "winograd2", "winograd4"};
          },
          "The convolution algorithms of the fast kernels.");
    m.def("conv_autotune_mode", &convAutotuneMode,
          "'on', 'off' or 'rebuild' (AIDGE_INCREMENTAL_AUTOTUNE unless set by set_conv_autotune_mode).");
    m.def(
        "set_conv_autotune_mode",
        [](const py::object &mode) {
            const std::string value = strArg(mode, "set_conv_autotune_mode", "mode");
            try {
                setConvAutotuneMode(value);
            } catch (const std::invalid_argument &e) {
                throw py::value_error(fmt::format("set_conv_autotune_mode: argument 'mode': {}", e.what()));
            }
        },
        py::arg("mode"), "Sets the autotune mode of this process ('on', 'off' or 'rebuild').");
    m.def("conv_autotune_file", &convAutotuneFile, "The autotune cache file ('' when the mode is 'off').");
    m.def("conv_autotune_table", &convAutotuneTable,
          "The convolution algorithms chosen or loaded in this process: (key, algorithm) pairs.");
}

} // namespace incremental
} // namespace Aidge
