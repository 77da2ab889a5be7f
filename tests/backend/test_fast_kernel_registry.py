"""The table of fast kernels that accelerate() walks (FastKernelRegistry.hpp).

Each FastXImpl.cpp registers its kernels with a static FastKernelRegistrar when
the module loads: these tests check that every registrar in the sources did
run (none dropped, none added twice) and that accelerate() still refuses what
has no entry.
"""
import pathlib
import re

import aidge_core
import pytest

import aidge_incremental  # noqa: F401  (loads _core after aidge_core, as users do)
from aidge_incremental import _core

ROOT = pathlib.Path(__file__).resolve().parents[2]
KERNEL_SOURCES = ROOT / "cpp" / "src" / "backend" / "cpu" / "operator"

EXPECTED = ["Add", "BatchNorm2D", "Conv2D", "FC", "GlobalAveragePooling", "Pad", "PaddedConv2D", "ReLU"]


def test_every_kernel_is_registered():
    assert _core.fast_kernels() == EXPECTED


@pytest.mark.skipif(not KERNEL_SOURCES.is_dir(), reason="C++ sources not at hand (installed package)")
def test_every_registrar_in_the_sources_ran():
    registrars = []
    for source in sorted(KERNEL_SOURCES.glob("Fast*Impl.cpp")):
        registrars += re.findall(r"\bconst FastKernelRegistrar (\w+)\(", source.read_text())
    assert len(registrars) == len(set(registrars)) == len(_core.fast_kernels()), registrars


def test_a_type_without_an_entry_is_refused():
    node = aidge_core.Sigmoid("sigmoid")
    assert _core.unsupported_reason(node) == "no fast kernel for Sigmoid"
    assert not _core.is_accelerated(node)
