"""C++ export of a deployable Aidge graph with aidge_export_cpp 0.10.1.

:func:`export_cpp_project` writes a standalone CMake project (``main.cpp``,
``dnn/`` with ``model_forward`` and the weights as C arrays) whose ``main``
replaces the generator's demo: ``run_export`` alone runs the sample baked in
``data/`` and prints the outputs; ``run_export IN OUT`` reads N samples from
the binary file IN (``input.size`` values of ``input.dtype`` each, C order)
and writes, per sample, every output's values to OUT. :func:`build` compiles
it with the project's own CMake (the binary lands at ``run_export`` in the
project; rebuild with ``cmake -S DIR -B DIR/build && cmake --build DIR/build``),
:func:`run` runs it on a batch.

Facts of aidge_export_cpp 0.10.1 this relies on (checked by the tests):
``dformat="nchw"`` is required (the default reads [1, 1, H, W] as
channels-last and computes wrong outputs); Flatten has no implementation
(graphs.py replaces it by Reshape); MaxPooling's index output would become an
extra ``model_forward`` output unless the graph's ordered outputs leave it out
(graphs.py sets them after compiling).
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import pathlib
import shutil
import subprocess
import tempfile
from typing import List, Optional, Sequence

import aidge_core
import numpy as np

from .errors import ExportError

__all__ = ["ExportError", "export_cpp_project", "build", "run", "project_info", "footprint", "C_TYPES",
           "check_cpp_export", "parse_json_object"]


#: C type of an export I/O -> NumPy dtype
C_TYPES = {"float": np.float32, "int8_t": np.int8, "int32_t": np.int32, "int64_t": np.int64,
           "uint8_t": np.uint8, "int16_t": np.int16}

PROJECT_FILE = "aidge_incremental.json"
BINARY = "run_export"  # what main.cpp was generated for: inputs, outputs, dtypes


def _require_exporter():
    try:
        import aidge_export_cpp  # noqa: F401  (registers the "export_cpp" library)
        from aidge_core.export_utils.config import ExportConfig
    except ImportError as e:
        raise ExportError("the C++ export needs aidge-export-cpp==0.10.1 and aidge-quantization==0.10.1: "
                          "pip install 'aidge_incremental[export]'") from e
    return ExportConfig


def _quiet(fn, *args, **kwargs):
    level = aidge_core.Log.get_console_level()
    aidge_core.Log.set_console_level(aidge_core.Level.Error)
    try:
        return fn(*args, **kwargs)
    finally:
        aidge_core.Log.set_console_level(level)


def export_cpp_project(graph: aidge_core.GraphView, folder, sample: np.ndarray, dtype: str = "float32",
                       prequantized: bool = False) -> dict:
    """Write the C++ project of ``graph`` into ``folder`` (which must not exist).

    ``sample``: one input [1, *input_shape] baked into the project (float32, or int8
    for a prequantized graph). Returns the project description (also written as
    ``aidge_incremental.json`` in the folder): inputs and outputs with name, C type
    and size, and the activation memory the export planned.
    """
    ExportConfig = _require_exporter()
    folder = pathlib.Path(folder)
    if folder.exists():
        raise ExportError(f"{folder} already exists")
    tensor = aidge_core.Tensor(np.ascontiguousarray(sample))
    config = ExportConfig(target="host", export_folder=str(folder.resolve()), dtype=dtype, dformat="nchw",
                          compile=False, cuda=False, model_prequantized=prequantized)
    wanted = len(graph.get_ordered_outputs())
    artifact = _quiet(_export, graph, config, tensor, wanted)
    manifest = artifact.manifest
    if len(manifest.inputs) != 1:
        raise ExportError(f"the export has {len(manifest.inputs)} inputs, expected one")
    io = {"inputs": [_io(i) for i in manifest.inputs], "outputs": [_io(o) for o in manifest.outputs],
          "activation_bytes": _activation_bytes(folder), "dtype": dtype}
    if len(io["outputs"]) != wanted:
        raise ExportError(f"the export has outputs {[o['name'] for o in io['outputs']]}, the graph {wanted}")
    (folder / "main.cpp").write_text(_main_cpp(io))
    (folder / PROJECT_FILE).write_text(json.dumps(io, indent=1))
    for generated in (".aidge-export.json",):  # the generator's own manifest describes its demo main
        if (folder / generated).exists():
            (folder / generated).unlink()
    return io


def _export(graph, config, tensor, n_outputs: int):
    """What aidge_core.export_utils.export does once a graph is float or quantized (prepare, then finalize), with
    MaxPooling's index outputs dropped: 0.10.1's own hotfix removes them only when they
    leave a MaxPooling node directly, but adapt_graph has by then put a layout Transpose
    after them, which would become extra model_forward outputs computed for nothing."""
    from aidge_core.export_utils.export import finalize_export, prepare_export, set_nodes_names
    ctx = prepare_export(graph, config, input_tensors=[tensor])
    g = ctx.graph
    outputs = list(g.get_ordered_outputs())
    dropped = []
    for out in outputs[n_outputs:]:
        node = out.node
        # walk back through single-input layout nodes to the MaxPooling indices
        chain = [node]
        while node.type() in ("Transpose", "Identity", "Reshape"):
            parent = node.get_parent(0)
            if parent is None:
                break
            node = parent
            chain.append(node)
        if node.type() != "MaxPooling2D" or chain[-2:-1] and chain[-2].input(0)[1] != 1:
            raise ExportError(f"the export has an unexpected output {out.node.name()} ({out.node.type()})")
        dropped.extend(chain[:-1])
    for node in dropped:
        g.remove(node, True)
    g.set_ordered_outputs(outputs[:n_outputs], True)
    if dropped:
        scheduler = aidge_core.SequentialScheduler(g)
        scheduler.tag_conditional_nodes()
        scheduler.generate_scheduling()
        set_nodes_names(scheduler)
        ctx = dataclasses.replace(ctx, scheduler=scheduler)
    # finalize_export saves exported_graph.mmd in the working directory: keep it out of the user's
    cwd = os.getcwd()
    with tempfile.TemporaryDirectory() as scratch:
        os.chdir(scratch)
        try:
            return finalize_export(ctx, config.application)
        finally:
            os.chdir(cwd)


def _io(entry: dict) -> dict:
    ctype = entry["dtype"]
    if ctype not in C_TYPES:
        raise ExportError(f"export I/O {entry['name']} has unsupported type {ctype}")
    return {"name": entry["name"], "ctype": ctype, "size": int(entry["size"]),
            "dims": [int(d) for d in entry["dims"]]}


def _activation_bytes(folder: pathlib.Path) -> int:
    """Activation RAM the export planned: the end of the furthest buffer in
    stats/memory_info.txt (lines 'start -> end [size] @ ...')."""
    path = folder / "stats" / "memory_info.txt"
    if not path.exists():
        raise ExportError(f"the export wrote no memory plan ({path})")
    end = 0
    for line in path.read_text().splitlines():
        parts = line.split()
        if "->" in parts:
            i = parts.index("->")
            end = max(end, int(parts[i + 1]))
    return end


def _main_cpp(io: dict) -> str:
    inp = io["inputs"][0]
    outs = io["outputs"]
    decls = "\n".join(f"    {o['ctype']}* out{k} = nullptr;" for k, o in enumerate(outs))
    args = ", ".join(f"&out{k}" for k in range(len(outs)))
    writes = "\n".join(f"        if (std::fwrite(out{k}, sizeof({o['ctype']}), {o['size']}, out) != {o['size']}) "
                       f"return fail(\"cannot write the outputs\");" for k, o in enumerate(outs))
    prints = "\n".join(
        f"        std::printf(\"{o['name']}:\");\n"
        f"        for (int i = 0; i < {o['size']}; ++i) std::printf(\" %.9g\", static_cast<double>(out{k}[i]));\n"
        f"        std::printf(\"\\n\");" for k, o in enumerate(outs))
    return f"""// Generated by aidge_incremental: runs the exported model.
//   run_export            the sample baked in data/, outputs printed
//   run_export IN OUT     IN: N samples of {inp['size']} {inp['ctype']} (C order);
//                         OUT: per sample, the outputs' values ({', '.join(f"{o['size']} {o['ctype']}" for o in outs)})
#include <cstdint>
#include <cstdio>
#include <vector>
#include "forward.hpp"
#include "data/{inp['name']}.h"

static int fail(const char* what) {{
    std::fprintf(stderr, "run_export: %s\\n", what);
    return 1;
}}

int main(int argc, char** argv) {{
{decls}
    if (argc == 1) {{
        model_forward({inp['name']}, {args});
{prints}
        return 0;
    }}
    if (argc != 3) return fail("usage: run_export [INPUT.bin OUTPUT.bin]");
    std::FILE* in = std::fopen(argv[1], "rb");
    if (!in) return fail("cannot open the input file");
    std::FILE* out = std::fopen(argv[2], "wb");
    if (!out) {{ std::fclose(in); return fail("cannot open the output file"); }}
    std::vector<{inp['ctype']}> x({inp['size']});
    for (;;) {{
        const size_t got = std::fread(x.data(), sizeof({inp['ctype']}), x.size(), in);
        if (got == 0) break;
        if (got != x.size()) return fail("the input file does not hold a whole number of samples");
        model_forward(x.data(), {args});
{writes}
    }}
    std::fclose(in);
    return std::fclose(out) == 0 ? 0 : fail("cannot write the outputs");
}}
"""


def project_info(folder) -> dict:
    path = pathlib.Path(folder) / PROJECT_FILE
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise ExportError(f"{folder} is not a C++ export of aidge_incremental ({path}: {e})") from e


def build(folder, jobs: int = 2) -> pathlib.Path:
    """Configure and build the project with its own CMake; the path of ``run_export``
    (moved to the project's root, the build tree removed)."""
    folder = pathlib.Path(folder)
    for tool in ("cmake",):
        if shutil.which(tool) is None:
            raise ExportError(f"building the C++ export needs {tool} on the PATH")
    build_dir = folder / "build"
    for cmd in (["cmake", "-S", str(folder), "-B", str(build_dir), "-DCMAKE_BUILD_TYPE=Release"],
                ["cmake", "--build", str(build_dir), "--target", "run_export", "-j", str(jobs)]):
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            raise ExportError(f"{' '.join(cmd[:2])} failed for {folder}:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    built = build_dir / "run_export"
    if not built.exists():
        raise ExportError(f"the build of {folder} made no run_export")
    # keep the binary, drop the build tree (its CMake cache holds this folder's path)
    binary = folder / BINARY
    os.replace(built, binary)
    shutil.rmtree(build_dir)
    from .trust import record_built_binary
    record_built_binary(binary)  # predict runs only binaries built here (trust.py)
    return binary


#: The CMake project ``rebuild`` compiles exported sources with: ours, never the
#: folder's own CMake files (which can run any command when configured); the
#: compiler options of aidge_export_cpp 0.10.1's default ``run_export`` target.
REBUILD_CMAKE = """cmake_minimum_required(VERSION 3.18)
project(run_export CXX)
set(CMAKE_CXX_STANDARD 17)
set(CMAKE_CXX_STANDARD_REQUIRED ON)
file(GLOB_RECURSE SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/data/*.cpp ${CMAKE_CURRENT_SOURCE_DIR}/dnn/src/*.cpp)
add_executable(run_export main.cpp ${SOURCES})
target_include_directories(run_export PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/dnn ${CMAKE_CURRENT_SOURCE_DIR}/dnn/include
                           ${CMAKE_CURRENT_SOURCE_DIR})
if(CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
    target_compile_options(run_export PRIVATE -Wall -Wextra -O3 -ffast-math -march=native)
endif()
"""
#: longest a rebuild's configure or compile step may take (a source including
#: /dev/zero would otherwise keep the compiler reading)
REBUILD_TIMEOUT_S = 900


def rebuild(sources, jobs: int = 2) -> pathlib.Path:
    """Build the exported sources copied into ``sources`` (a private folder holding
    ``main.cpp``, ``data/``, ``dnn/``) with :data:`REBUILD_CMAKE`; the built binary
    (inside ``sources``), recorded as built here (trust.py)."""
    sources = pathlib.Path(sources)
    if shutil.which("cmake") is None:
        raise ExportError("rebuilding a C++ export needs cmake on the PATH")
    (sources / "CMakeLists.txt").write_text(REBUILD_CMAKE)
    build_dir = sources / "build"
    for cmd in (["cmake", "-S", str(sources), "-B", str(build_dir), "-DCMAKE_BUILD_TYPE=Release"],
                ["cmake", "--build", str(build_dir), "--target", "run_export", "-j", str(jobs)]):
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=REBUILD_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            raise ExportError(f"{' '.join(cmd[:2])} took more than {REBUILD_TIMEOUT_S} s: not rebuilt") from None
        if done.returncode != 0:
            raise ExportError(f"{' '.join(cmd[:2])} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    built = build_dir / "run_export"
    if not built.is_file():
        raise ExportError("the rebuild made no run_export")
    from .trust import record_built_binary
    record_built_binary(built)
    return built


def section_bytes(binary) -> dict:
    """Sizes of a built export's ELF sections (``size -A``): ``.text`` is the machine
    code; aidge_export_cpp places every constant array (weights, and the sample baked
    in data/) in ``.nn_data_dtype.<type>`` sections."""
    if shutil.which("size") is None:
        raise ExportError("measuring the code size needs binutils' size on the PATH")
    done = subprocess.run(["size", "-A", str(binary)], capture_output=True, text=True)
    sections = {}
    for line in done.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0].startswith(".") and parts[1].isdigit():
            sections[parts[0]] = int(parts[1])
    if ".text" not in sections:
        raise ExportError(f"no .text section in {binary}")
    return sections


def footprint(folder) -> dict:
    """Code, weights and activation bytes of a built project."""
    folder = pathlib.Path(folder)
    info = project_info(folder)
    sections = section_bytes(folder / BINARY)
    inp = info["inputs"][0]
    baked = inp["size"] * np.dtype(C_TYPES[inp["ctype"]]).itemsize
    constants = sum(v for k, v in sections.items() if k.startswith(".nn_data_dtype"))
    return {"weights_bytes": constants - baked, "code_bytes": sections[".text"],
            "activation_bytes": info["activation_bytes"], "binary_bytes": (folder / BINARY).stat().st_size}


def run(folder, x: np.ndarray, binary: Optional[os.PathLike] = None, info: Optional[dict] = None) -> List[np.ndarray]:
    """Run the built export on a batch ``x`` [N, ...]: one array [N, size] per output.

    ``binary``: the program to run (default: the project's ``run_export``);
    ``info``: the project description already read and checked (default: read
    ``aidge_incremental.json``)."""
    folder = pathlib.Path(folder)
    info = project_info(folder) if info is None else info
    binary = pathlib.Path(binary or folder / BINARY)
    if not binary.exists():
        raise ExportError(f"{binary} does not exist: build the export first")
    inp = info["inputs"][0]
    x = np.ascontiguousarray(x, C_TYPES[inp["ctype"]]).reshape(len(x), -1)
    if x.shape[1] != inp["size"]:
        raise ExportError(f"samples of {x.shape[1]} values, the export takes {inp['size']}")
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = pathlib.Path(tmp) / "in.bin", pathlib.Path(tmp) / "out.bin"
        src.write_bytes(x.tobytes())
        done = subprocess.run([str(binary), str(src), str(dst)], capture_output=True, text=True)
        if done.returncode != 0:
            raise ExportError(f"{binary} failed: {done.stderr.strip()}")
        raw = dst.read_bytes()
    dtypes = [np.dtype(C_TYPES[o["ctype"]]) for o in info["outputs"]]
    record = np.dtype([(f"o{k}", dt, (o["size"],)) for k, (o, dt) in enumerate(zip(info["outputs"], dtypes))])
    if len(raw) != record.itemsize * len(x):
        raise ExportError(f"{binary} wrote {len(raw)} bytes, expected {record.itemsize * len(x)}")
    rows = np.frombuffer(raw, record)
    return [np.array(rows[f"o{k}"]) for k in range(len(dtypes))]


# -- checking a folder before serving it ----------------------------------------------

def parse_json_object(data: bytes, path) -> dict:
    try:
        value = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise ValueError(f"{path} is unreadable: {type(e).__name__}: {str(e)[:200]}") from None
    if not isinstance(value, dict):
        raise ValueError(f"{path} is not a JSON object")
    return value


def _int_list(value) -> bool:
    return isinstance(value, list) and bool(value) and all(type(v) is int for v in value)


def check_cpp_export(folder: pathlib.Path, info: dict, project: dict, part: str) -> None:
    """export.json (what the folder says it holds) against the project description
    written with the binary (``aidge_incremental.json``: its inputs and outputs)."""
    described = f"{part}/{PROJECT_FILE}"
    if info.get("kind") != "aidge_incremental C++ export":
        raise ValueError(f"{folder / 'export.json'} does not describe an aidge_incremental C++ export")
    dtype, shape, classes = info.get("dtype"), info.get("input_shape"), info.get("classes")
    divisor = info.get("input_divisor")
    if dtype not in ("float32", "int8") or not _int_list(shape) or min(shape) < 1 or not _int_list(classes) \
            or not isinstance(divisor, (int, float)) or not math.isfinite(divisor) or divisor <= 0:
        raise ValueError(f"{folder / 'export.json'} has invalid fields (dtype, input_shape, classes, input_divisor)")
    inputs, outputs = project.get("inputs"), project.get("outputs")
    valid = lambda io: isinstance(io, dict) and io.get("ctype") in C_TYPES and type(io.get("size")) is int \
        and io["size"] > 0  # noqa: E731
    if not isinstance(inputs, list) or len(inputs) != 1 or not isinstance(outputs, list) or not outputs \
            or not all(valid(io) for io in inputs + outputs):
        raise ValueError(f"{folder / described} is not the description of an exported binary")
    expected = "int8_t" if part == "model" and dtype == "int8" else "float"
    if inputs[0]["ctype"] != expected:
        said = f"the head is {dtype}" if part == "model" else "the NME classifier is float32"
        raise ValueError(f"{folder}: export.json says {said}, but {described} (the binary's own description) "
                         f"takes {inputs[0]['ctype']} inputs ({'int8' if inputs[0]['ctype'] == 'int8_t' else 'float32'}): "
                         "the folder mixes exports; not served")
    if inputs[0]["size"] != math.prod(shape):
        raise ValueError(f"{folder}: export.json says inputs of shape {shape}, {described} takes "
                         f"{inputs[0]['size']} values")
    if part == "model":
        if outputs[0]["size"] != len(classes):
            raise ValueError(f"{folder}: export.json lists {len(classes)} classes, the binary's logits output "
                             f"({described}) has {outputs[0]['size']} values; not served")
    else:
        labels = info.get("nme_classes")
        if not _int_list(labels) or len(outputs) != 2 or outputs[0]["size"] != len(labels) + 1 \
                or outputs[1]["size"] != 1:
            raise ValueError(f"{folder}: export.json's nme_classes ({len(labels) if isinstance(labels, list) else 0} "
                             f"labels) do not fit the NME binary's outputs ({described}); not served")
