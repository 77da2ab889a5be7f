"""One OpenMP runtime for Aidge's CPU kernels, whatever else is installed.

The Aidge 0.10.1 wheels bundle libgomp under hashed names: aidge-core's
``aidge_core.libs/libgomp-e985bcbb...`` (used by aidge_core, aidge_backend_cpu,
aidge_learning and our ``_core``), and aidge-quantization its own
``aidge_quantization.libs/libgomp-24e2ab19...``. ``import aidge_core`` imports
aidge_quantization when it is installed (the ``export``/``test`` extras bring
it), and aidge_quantization's library loads ``lib_aidge_backend_cpu.so`` as one
of its dependencies: the dynamic loader then binds the backend's OpenMP calls to
the libgomp that aidge_quantization needs directly, i.e. its own (seen with
``LD_DEBUG=bindings``). Two OpenMP runtimes then share the cores, each with its
own spinning worker threads: measured on 2 cores, one SGD step of the
784-256-256-10 MLP took 14.2 ms instead of 0.94 ms.

``preload()`` (run when ``aidge_incremental`` is imported, before anything imports
aidge_core) loads ``lib_aidge_backend_cpu.so`` first, on its own, so that its
calls bind to the libgomp it names itself -- aidge-core's, the one every other
Aidge library uses. It changes nothing when aidge_core is already imported
(``import aidge_incremental`` first to benefit; ``openmp_runtimes()`` in
``aidge_incremental.backend.cpu`` tells what a process has). This module must not
import aidge_core.

It also sets the OpenMP waiting policy (``set_wait_policy``, before any
runtime loads), unless the user chose one.
"""
import ctypes
import importlib.util
import os
import sys

#: How many times an idle OpenMP worker checks for work before it sleeps, unless
#: the user chose (OMP_WAIT_POLICY or GOMP_SPINCOUNT set): 1,000, the count
#: libgomp itself falls back to when it has more threads than cores. Its
#: default, 300,000 (about a millisecond), makes every worker that waits at a
#: barrier for a sibling the OS has descheduled burn its time slice. Measured
#: on a busy 2-core machine (load 11), a digits iCaRL run of 10 epochs:
#: 34.2 s with 300,000, 11.0 s with 10,000, 8.9 s with 1,000, 8.7 s passive,
#: 7.9 s on one thread. Small kernels do not wake the team at all
#: (backend/cpu/Threads.hpp); a ResNet's kernels last milliseconds, so the
#: workers' wake-up (microseconds) is a small share of a step.
SPIN_COUNT = "1000"
#: the waiting policy this process runs with: "user" (set before import), or
#: the GOMP_SPINCOUNT set here
wait_policy = ""

#: path of the library loaded here, or None
loaded = None
#: why nothing was loaded ("" when loaded, or when there was nothing to do)
skipped = ""


def _backend_cpu_library():
    try:
        spec = importlib.util.find_spec("aidge_backend_cpu")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        path = os.path.join(folder, "lib_aidge_backend_cpu.so")
        if os.path.isfile(path):
            return path
    return None


def set_wait_policy():
    """GOMP_SPINCOUNT = SPIN_COUNT unless the user set a policy; libgomp reads it
    when it loads, so this runs before anything loads an OpenMP runtime (every
    libgomp loaded later in the process, PyTorch's included, reads it too)."""
    global wait_policy
    if "OMP_WAIT_POLICY" in os.environ or "GOMP_SPINCOUNT" in os.environ:
        wait_policy = "user"
    else:
        os.environ["GOMP_SPINCOUNT"] = SPIN_COUNT
        wait_policy = f"GOMP_SPINCOUNT={SPIN_COUNT}"


def preload():
    """Load Aidge's CPU backend library before aidge_core (see the module doc)."""
    global loaded, skipped
    if loaded is not None or not sys.platform.startswith("linux"):
        return
    if "aidge_core" in sys.modules:
        skipped = "aidge_core was imported before aidge_incremental"
        return
    path = _backend_cpu_library()
    if path is None:
        skipped = "lib_aidge_backend_cpu.so not found"
        return
    try:
        ctypes.CDLL(path)  # RTLD_LOCAL: only fixes where its own symbols bind
    except OSError as exc:  # import aidge_core will report the real problem
        skipped = f"{path}: {exc}"
        return
    loaded = path


set_wait_policy()
preload()
