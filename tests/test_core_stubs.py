"""The typed stubs of aidge_incremental._core (aidge_incremental/_core/*.pyi).

(a) They describe the built module: the same public names in _core and _core.loss,
    the same classes, methods and properties, the same parameter names (read from
    the signatures pybind11 writes at the top of each docstring). A binding added,
    removed or renamed without `python tools/generate_stubs.py` fails here.
(b) With mypy installed: a checker reading them accepts correct uses of _core and
    reports wrong ones (wrong argument types, aidge_core types included, and a
    missing attribute), so the types really reach it.
"""
import ast
import importlib.util
import inspect
import pathlib
import re
import shutil
import subprocess
import sys
import textwrap

import pytest

import aidge_incremental  # noqa: F401  (loads _core after aidge_core, as users do)
from aidge_incremental import _core

ROOT = pathlib.Path(__file__).resolve().parents[1]
STUBS = ROOT / "aidge_incremental" / "_core"
MODULES = {"": (_core, STUBS / "__init__.pyi"), "loss": (_core.loss, STUBS / "loss.pyi")}


# ------------------------------------------------------------------ (a) staleness

def split_top_level(text):
    """Split a parameter list on the commas outside brackets and quotes (the
    splitter the package's argument messages use)."""
    from aidge_incremental._arguments import _split_top_level
    return _split_top_level(text)


def runtime_parameters(obj, name):
    """Parameter names of a pybind11 function from the signature line of its docstring."""
    doc = (obj.__doc__ or "").lstrip()
    match = re.match(rf"{re.escape(name)}\((.*?)\) ->", doc.splitlines()[0] if doc else "")
    assert match, f"{name}: no pybind11 signature in its docstring: {doc[:200]!r}"
    params = [p.split(":")[0].split("=")[0].strip() for p in split_top_level(match.group(1))]
    return [p for p in params if p != "self"]


def stub_parameters(node):
    args = node.args
    names = [a.arg for a in args.posonlyargs + args.args + args.kwonlyargs]
    return [n for n in names if n != "self"]


def stub_tree(path):
    return ast.parse(path.read_text())


def stub_module_names(tree):
    names = {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names[node.name] = node
        elif isinstance(node, ast.ImportFrom) and node.module is None:  # from . import loss
            for alias in node.names:
                names[alias.asname or alias.name] = node
    return names


def public(names):
    return {n for n in names if not n.startswith("_")}


@pytest.mark.parametrize("submodule", sorted(MODULES))
def test_stubs_declare_exactly_the_public_names(submodule):
    module, path = MODULES[submodule]
    declared = stub_module_names(stub_tree(path))
    runtime = public(dir(module))
    assert public(declared) == runtime, (
        f"stale stubs for _core{'.' + submodule if submodule else ''}: only at run time "
        f"{sorted(runtime - public(declared))}, only in the stubs {sorted(public(declared) - runtime)} "
        "(rebuild, then python tools/generate_stubs.py)")


@pytest.mark.parametrize("submodule", sorted(MODULES))
def test_stub_functions_have_the_runtime_parameters(submodule):
    module, path = MODULES[submodule]
    for name, node in stub_module_names(stub_tree(path)).items():
        if isinstance(node, ast.FunctionDef):
            assert stub_parameters(node) == runtime_parameters(getattr(module, name), name), name


def class_members(node):
    """Methods and properties of a stub class, by name (overloads collapse to one)."""
    members = {}
    for item in node.body:
        if isinstance(item, ast.FunctionDef):
            decorators = {d.attr if isinstance(d, ast.Attribute) else getattr(d, "id", None)
                          for d in item.decorator_list}
            members.setdefault(item.name, ("property" if "property" in decorators else "method", item))
    return members


def runtime_members(cls):
    members = {}
    for name, value in vars(cls).items():
        if name.startswith("_") and name not in ("__init__", "__len__"):
            continue
        if isinstance(value, property):
            members[name] = "property"
        elif callable(value) or isinstance(value, staticmethod):
            members[name] = "method"
    return members


def test_stub_classes_have_the_runtime_members_and_parameters():
    declared = stub_module_names(stub_tree(STUBS / "__init__.pyi"))
    classes = {n: c for n, c in declared.items() if isinstance(c, ast.ClassDef)}
    assert classes, "no class in the stubs"
    for name, node in classes.items():
        cls = getattr(_core, name)
        if issubclass(cls, BaseException):  # registered exception: no members of its own
            continue
        stub = {n: kind for n, (kind, _) in class_members(node).items()
                if not n.startswith("_") or n in ("__init__", "__len__")}
        runtime = runtime_members(cls)
        if "__init__" not in vars(cls):  # enum classes: pybind11's own constructor
            stub.pop("__init__", None)
        assert stub == runtime, f"{name}: stub members {stub} != runtime {runtime}"
        for member, (kind, item) in class_members(node).items():
            if kind == "method" and member in runtime and member != "__len__":
                attribute = inspect.getattr_static(cls, member)
                function = attribute.__func__ if isinstance(attribute, staticmethod) else getattr(cls, member)
                assert stub_parameters(item) == runtime_parameters(function, member), f"{name}.{member}"


def test_package_is_marked_typed():
    assert (ROOT / "aidge_incremental" / "py.typed").is_file()


# ------------------------------------------------------------------ (b) mypy

GOOD = '''
import aidge_core
import numpy as np
from aidge_incremental import _core


def use(student: aidge_core.Tensor, teacher: aidge_core.Tensor, graph: aidge_core.GraphView,
        node: aidge_core.Node) -> None:
    loss: aidge_core.Tensor = _core.loss.distillation(student, teacher, 2.0, n_old=3, form="kl")
    op = _core.DistillationOp(temperature=2.0, n_old=1, form=_core.DistillationForm.BCE)
    temperature: float = op.temperature
    changed: int = _core.accelerate(graph)
    reason: str = _core.unsupported_reason(node)
    _core.set_skip_backward(node, skip=False)
    kernels: list[str] = _core.fast_kernels()
    picks = _core.herding_selection(np.zeros((5, 3), np.float32), 2)
    memory = _core.ExemplarMemoryCore("total", 10, [3], np.uint8)
    size: int = len(memory) + int(picks[0])
    sgd = _core.FastSGD([student], momentum=0.9, weight_decay=5e-4)
    sgd.update(lr=0.1)
'''

# Each line must draw an error: (line number in BAD, what is wrong).
BAD = '''
import aidge_core
from aidge_incremental import _core


def misuse(student: aidge_core.Tensor, node: aidge_core.Node) -> None:
    _core.DistillationOp(temperature=2.0, n_old="3")
    _core.set_skip_backward("fc1")
    _core.loss.distillation(student, 1.5)
    _core.no_such_function()
    kernels: str = _core.fast_kernels()
    _core.is_accelerated(student)
'''
BAD_LINES = {7: "str where an int is expected", 8: "str where an aidge_core.Node is expected",
             9: "float where an aidge_core.Tensor is expected", 10: "missing attribute",
             11: "list[str] assigned to str", 12: "Tensor where a Node is expected"}


def aidge_core_stub(referenced):
    """A parseable stand-in for aidge_core's stubs: the classes our stubs name, with
    their aidge_core bases, as the running aidge_core has them. aidge_core 0.10.1
    ships stubs (py.typed, __init__.pyi) that do not parse (pybind11-stubgen wrote
    defaults such as `<RoundingMode.HALF_AWAY_FROM_ZERO: 0>` and return types such as
    `Aidge::MetaOperator_Op`), and a syntax error in a stub stops mypy outright."""
    import aidge_core

    classes, todo = {}, sorted(referenced)
    while todo:
        name = todo.pop()
        cls = getattr(aidge_core, name, None)
        assert inspect.isclass(cls), f"the stubs name aidge_core.{name}, which aidge_core does not have"
        bases = [b.__name__ for b in cls.__bases__ if getattr(aidge_core, b.__name__, None) is b]
        classes[name] = bases
        todo += [b for b in bases if b not in classes]
    ordered, done = [], set()
    while len(ordered) < len(classes):  # bases first
        for name, bases in sorted(classes.items()):
            if name not in done and all(b in done for b in bases):
                ordered.append(f"class {name}({', '.join(bases)}): ...\n" if bases else f"class {name}: ...\n")
                done.add(name)
    return "".join(ordered)


def run_mypy(tmp_path, source):
    # Only the stubs of this tree, in a stub-only package: mypy checks _core's types
    # without analysing the package's Python modules; numpy comes from the
    # environment, aidge_core from aidge_core_stub().
    stubs = tmp_path / "stubs"
    shutil.copytree(STUBS, stubs / "aidge_incremental" / "_core")
    (stubs / "aidge_incremental" / "__init__.pyi").write_text("")
    (stubs / "aidge_incremental" / "py.typed").write_text("")
    referenced = set()
    for path in STUBS.glob("*.pyi"):
        referenced |= set(re.findall(r"\baidge_core\.(\w+)", path.read_text()))
    referenced |= set(re.findall(r"\baidge_core\.(\w+)", source))
    (stubs / "aidge_core").mkdir()
    (stubs / "aidge_core" / "__init__.pyi").write_text(aidge_core_stub(referenced))
    program = tmp_path / "program.py"
    program.write_text(textwrap.dedent(source))
    env = {"MYPYPATH": str(stubs), "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, "-m", "mypy", "--no-incremental", "--cache-dir", str(tmp_path / "cache"),
                           "--python-executable", sys.executable, "--show-error-codes", "--no-error-summary",
                           str(program)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)


needs_mypy = pytest.mark.skipif(importlib.util.find_spec("mypy") is None, reason="mypy is not installed")


@needs_mypy
def test_mypy_accepts_correct_uses(tmp_path):
    result = run_mypy(tmp_path, GOOD)
    assert result.returncode == 0, result.stdout + result.stderr


@needs_mypy
def test_mypy_reports_misuses(tmp_path):
    result = run_mypy(tmp_path, BAD)
    assert result.returncode == 1, result.stdout + result.stderr
    flagged = {int(m.group(1)) for m in re.finditer(r"program\.py:(\d+): error:", result.stdout)}
    missing = {line: why for line, why in BAD_LINES.items() if line not in flagged}
    assert not missing, f"mypy did not report {missing}:\n{result.stdout}"
