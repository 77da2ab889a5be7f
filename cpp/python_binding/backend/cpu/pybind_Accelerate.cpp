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

/// The shape of a convolution of x [N, C, H, W] by w [O, C, KH, KW]; throws
/// ValueError naming what is wrong.
ConvShape convShapeOf(const char *fn, const FloatArray &x, const FloatArray &w, const std::array<int, 2> &stride,
                      const std::array<int, 4> &padding)
{
    if (x.ndim() != 4 || w.ndim() != 4) {
        throw py::value_error(fmt::format("{}: x must be [N, C, H, W] and w [O, C, KH, KW], got {}-D and {}-D",
                                          fn, x.ndim(), w.ndim()));
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
    if (w.shape(1) != x.shape(1) || s.N < 1 || s.C < 1 || s.O < 1 || s.KH < 1 || s.KW < 1) {
        throw py::value_error(fmt::format("{}: w must be [O, C = {}, KH, KW] with every size >= 1, got [{}, {}, {}, {}]",
                                          fn, x.shape(1), w.shape(0), w.shape(1), w.shape(2), w.shape(3)));
    }
    if (s.SH < 1 || s.SW < 1 || s.PT < 0 || s.PL < 0 || s.PB < 0 || s.PR < 0) {
        throw py::value_error(fmt::format("{}: strides must be >= 1 and paddings >= 0", fn));
    }
    const int hp = s.H + s.PT + s.PB - s.KH, wp = s.W + s.PL + s.PR - s.KW;
    if (hp < 0 || wp < 0) {
        throw py::value_error(fmt::format("{}: the {}x{} kernel is larger than the padded {}x{} input", fn, s.KH,
                                          s.KW, s.H + s.PT + s.PB, s.W + s.PL + s.PR));
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
        throw py::value_error(fmt::format("{}: {} (or 'auto')", fn, e.what()));
    }
    if (!convAlgorithmApplies(out, s)) {
        throw py::value_error(fmt::format("{}: algorithm '{}' does not apply to a {}x{} kernel with stride {}x{}",
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
        [](const FloatArray &x, const FloatArray &w, const py::object &bias, std::array<int, 2> stride,
           std::array<int, 4> padding, const std::string &algorithm) {
            const ConvShape s = convShapeOf("conv2d_forward", x, w, stride, padding);
            FloatArray b;
            if (!bias.is_none()) {
                b = FloatArray::ensure(bias);
                if (!b || b.ndim() != 1 || b.shape(0) != s.O) {
                    throw py::value_error(fmt::format("conv2d_forward: bias must hold O = {} values", s.O));
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
        py::arg("x"), py::arg("w"), py::arg("bias") = py::none(), py::arg("stride") = std::array<int, 2>{1, 1},
        py::arg("padding") = std::array<int, 4>{0, 0, 0, 0}, py::arg("algorithm") = "auto",
        "The fast kernels' float32 convolution of x [N, C, H, W] by w [O, C, KH, KW] (padding: top, left, "
        "bottom, right), by the autotuned algorithm or a given one (im2col, shifted, winograd2, winograd4). "
        "For tests and benchmarks; models use it through accelerate().");
    m.def(
        "conv2d_backward",
        [](const FloatArray &x, const FloatArray &w, const FloatArray &dy, std::array<int, 2> stride,
           std::array<int, 4> padding, const std::string &algorithm, bool bias) {
            const ConvShape s = convShapeOf("conv2d_backward", x, w, stride, padding);
            if (dy.ndim() != 4 || dy.shape(0) != s.N || dy.shape(1) != s.O || dy.shape(2) != s.HO ||
                dy.shape(3) != s.WO) {
                throw py::value_error(fmt::format("conv2d_backward: dy must be [{}, {}, {}, {}]", s.N, s.O, s.HO,
                                                  s.WO));
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
        py::arg("x"), py::arg("w"), py::arg("dy"), py::arg("stride") = std::array<int, 2>{1, 1},
        py::arg("padding") = std::array<int, 4>{0, 0, 0, 0}, py::arg("algorithm") = "auto",
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
        [](const std::string &mode) {
            try {
                setConvAutotuneMode(mode);
            } catch (const std::invalid_argument &e) {
                throw py::value_error(e.what());
            }
        },
        py::arg("mode"), "Sets the autotune mode of this process ('on', 'off' or 'rebuild').");
    m.def("conv_autotune_file", &convAutotuneFile, "The autotune cache file ('' when the mode is 'off').");
    m.def("conv_autotune_table", &convAutotuneTable,
          "The convolution algorithms chosen or loaded in this process: (key, algorithm) pairs.");
}

} // namespace incremental
} // namespace Aidge
