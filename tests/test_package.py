"""The package's shape: imports run one way (no cycle, the ground floor imports
nothing of ours), every public class is in its module's ``__all__``, and
``import aidge_incremental`` from the repository root works or says why in one line."""
import importlib
import inspect
import os
import pathlib
import pkgutil
import shutil
import subprocess
import sys

import pytest

import aidge_incremental

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import import_graph  # noqa: E402

#: units that stand on the ground floor: they import nothing of the package
GROUND = {"backend", "environment", "files", "options", "profiling", "registry"}


def test_imports_have_no_cycle_and_the_ground_floor_imports_nothing_of_ours():
    arrows, _ = import_graph.graph("aidge_incremental", lazy=True, root=ROOT)
    floor, cycles = import_graph.floors(arrows)
    assert cycles == []
    for unit in GROUND:
        assert arrows[unit] == set(), f"{unit} imports {arrows[unit]}"
    # data flows one way: nothing below the methods reaches up to them, the run or the CLI
    for unit, targets in arrows.items():
        if unit not in ("methods", "config", "experiment", "rundir", "cli", "sweep"):
            assert not targets & {"methods", "config", "experiment", "cli"}, (unit, targets)


def test_no_two_modules_import_each_other_even_inside_functions(monkeypatch):
    """Module by module, imports inside functions counted: a lazy import that runs
    back up (export.cpp <-> export.trust, export.step <-> export.targets were) is a cycle."""
    monkeypatch.setattr(import_graph, "MODULES", True)
    arrows, _ = import_graph.graph("aidge_incremental", lazy=True, root=ROOT)
    assert import_graph.floors(arrows)[1] == []


def _modules():
    for info in pkgutil.walk_packages(aidge_incremental.__path__[:1], "aidge_incremental."):
        if info.name.endswith("_core") or ".cuda" in info.name and "backend" not in info.name:
            continue
        yield importlib.import_module(info.name)


def test_every_public_class_is_in_its_modules_all():
    missing = []
    for module in _modules():
        exported = set(getattr(module, "__all__", ()))
        for name, obj in vars(module).items():
            if inspect.isclass(obj) and obj.__module__ == module.__name__ and not name.startswith("_") \
                    and name not in exported:
                missing.append(f"{module.__name__}.{name}")
    assert missing == []


def test_the_package_all_resolves():
    for name in aidge_incremental.__all__:
        assert getattr(aidge_incremental, name) is not None, name


def test_import_from_the_repository_root_works():
    """Standing at the root, Python finds this source tree first; it must still import
    (a built core in place, or the installed package's core) and run C++ code."""
    code = ("import aidge_incremental as ai, numpy as np; "
            "print(ai.core_origin); print(ai.memory.herding_selection(np.eye(4, dtype=np.float32), 2))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[1].startswith("[")


def test_a_source_tree_without_a_core_says_what_to_do(tmp_path):
    """No built core here and no installed package (site-packages off): one line, the cause and the fix."""
    shutil.copytree(ROOT / "aidge_incremental", tmp_path / "aidge_incremental",
                    ignore=shutil.ignore_patterns("*.so", "__pycache__"))
    done = subprocess.run([sys.executable, "-S", "-c", "import aidge_incremental"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120,
                          env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError: aidge_incremental's C++ core (_core) is not built in")
    assert "pip install --no-build-isolation -e ." in last and "outside the repository root" in last
