"""What the benchmarks share: timing, the environment report, background load,
child processes, reference implementations and the PyTorch twin of our CIFAR
ResNets.

This module imports neither aidge_incremental nor torch at the top: the
PyTorch side of a comparison runs in a process that never loads Aidge (its
peak memory is then PyTorch's alone), and ours in one that never loads torch.

- timing: :func:`interleaved` runs callables in turn and returns every sample;
  :func:`best` / :func:`median` summarise them (one helper for all scripts);
- :func:`environment`: CPU, threads, OpenMP runtimes, the BLAS kernels of ours
  and of NumPy (threadpoolctl), PyTorch's threads and ISA, printed at the top
  of every benchmark;
- :class:`BackgroundLoad`: n busy-loop processes for the duration of a block;
- :func:`run_child`: the same script in a fresh process with other environment
  variables (threads, OPENBLAS_CORETYPE are read once, when a library loads),
  returning the JSON it prints;
- :func:`numpy_herding`, :func:`numpy_nme`: vectorised NumPy references;
- :func:`torch_cifar_resnet`: our ``resnet20/32/...`` written in PyTorch,
  layer for layer (option-A shortcuts, no ReLU after the last block), with
  :func:`load_our_weights` to start from our model's initial weights.
"""
from __future__ import annotations

import json
import os
import platform
import re
import subprocess
import sys
import time
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

# ------------------------------------------------------------------- timing


def interleaved(fns: Sequence[Optional[Callable]], repeats: int, settle: bool = True,
                clock: Callable[[], float] = time.perf_counter) -> List[List[float]]:
    """Seconds of each callable over ``repeats`` rounds, run in turn (a, b, a, b...).

    ``None`` entries are skipped (their list stays empty). With ``settle``, each
    timed call follows an untimed call of the same callable: PyTorch's OpenMP
    threads keep spinning for a while after a PyTorch call and would steal the
    cores from whatever is timed next (and ours from it).
    """
    samples: List[List[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            if fn is None:
                continue
            if settle:
                fn()
            start = clock()
            fn()
            samples[i].append(clock() - start)
    return samples


def best(samples: Sequence[float]) -> Optional[float]:
    return min(samples) if len(samples) else None


def median(samples: Sequence[float]) -> Optional[float]:
    return float(np.median(samples)) if len(samples) else None


def fmt_ms(seconds: Optional[float], width: int = 9) -> str:
    return f"{'n/a':>{width}}" if seconds is None else f"{1e3 * seconds:{width}.2f}"


def ratio(a: Optional[float], b: Optional[float]) -> str:
    return "n/a" if a is None or b is None or b == 0 else f"{a / b:.2f}x"


# -------------------------------------------------------------- environment


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


ENV_VARS = ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "OPENBLAS_CORETYPE", "OPENBLAS_NUM_THREADS",
            "AIDGE_INCREMENTAL_AUTOTUNE")


def environment(ours: bool = True, torch_too: bool = True) -> List[str]:
    """Lines describing what the figures depend on (imports what it reports on)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    lines = [f"CPU: {cpu_model()}, {os.cpu_count()} logical cores ({cores} usable), "
             f"load average {', '.join(f'{v:.2f}' for v in os.getloadavg())}",
             "environment: " + ", ".join(f"{k}={os.environ.get(k, 'unset')}" for k in ENV_VARS)]
    if ours:
        import aidge_incremental  # noqa: F401  (first: one OpenMP runtime)
        from aidge_incremental.backend import _openmp_preload, cpu
        runtimes = cpu.openmp_runtimes()
        lines.append(f"ours: OpenBLAS kernels {cpu.blas_core_name()} ({cpu.blas_config()}), convolution "
                     f"autotune {os.environ.get('AIDGE_INCREMENTAL_AUTOTUNE', 'on')} "
                     f"({cpu.conv_autotune_file() or 'no file'}), OpenMP waiting: {_openmp_preload.wait_policy}")
        lines.append("OpenMP runtimes loaded: " + (", ".join(os.path.basename(r) for r in runtimes) or "none")
                     + ("; Aidge's CPU backend preloaded: its kernels and ours share aidge-core's"
                        if _openmp_preload.loaded else f"; preload skipped: {_openmp_preload.skipped}"))
    try:
        import threadpoolctl
        for pool in threadpoolctl.threadpool_info():
            if pool.get("user_api") == "blas" and "numpy" in pool.get("filepath", ""):
                lines.append(f"NumPy's BLAS: {pool.get('internal_api')} {pool.get('version')}, kernels "
                             f"{pool.get('architecture')}, {pool.get('num_threads')} threads "
                             f"({os.path.basename(pool.get('filepath', ''))})")
    except ImportError:
        lines.append("NumPy's BLAS: threadpoolctl not installed, not reported")
    if torch_too:
        try:
            import torch
            lines.append(f"PyTorch {torch.__version__}: {torch.get_num_threads()} threads, CPU capability "
                         f"{torch.backends.cpu.get_cpu_capability()} (oneDNN ignores OPENBLAS_CORETYPE)")
        except ImportError:
            lines.append("PyTorch: not installed (its columns are n/a)")
    return lines


def print_environment(title: str, **kwargs) -> None:
    print(title)
    for line in environment(**kwargs):
        print("  " + line)


# ------------------------------------------------------- background load


class BackgroundLoad:
    """``with BackgroundLoad(2):`` -- n processes spinning on one core each (a
    busy machine), started on entry and killed on exit."""

    def __init__(self, n: int):
        self.n = int(n)
        self.procs: List[subprocess.Popen] = []

    def __enter__(self):
        code = "x = 0\nwhile True:\n    x = (x * 1103515245 + 12345) & 0xFFFFFFFF\n"
        self.procs = [subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.DEVNULL,
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                      for _ in range(self.n)]
        time.sleep(0.2 if self.n else 0.0)  # let them start spinning
        return self

    def __exit__(self, *exc):
        for p in self.procs:
            p.kill()
        for p in self.procs:
            p.wait()
        self.procs = []
        return False


# --------------------------------------------------------- child processes

JSON_MARK = "BENCH-JSON "


def emit(result: dict) -> None:
    """A child's result, on one stdout line the parent finds."""
    print(JSON_MARK + json.dumps(result), flush=True)


def run_child(args: Sequence[str], env: Dict[str, Optional[str]], timeout: float = 3600) -> dict:
    """Run ``python <args>`` with ``env`` changes (None removes a variable);
    returns the JSON it :func:`emit`-ted. Raises with its output otherwise."""
    full = dict(os.environ)
    for key, value in env.items():
        if value is None:
            full.pop(key, None)
        else:
            full[key] = str(value)
    done = subprocess.run([sys.executable, *args], env=full, capture_output=True, text=True, timeout=timeout)
    for line in reversed(done.stdout.splitlines()):
        if line.startswith(JSON_MARK):
            return json.loads(line[len(JSON_MARK):])
    raise RuntimeError(f"child {' '.join(args)} failed ({done.returncode}):\n{done.stdout[-3000:]}\n"
                       f"{done.stderr[-3000:]}")


def peak_rss_mb() -> float:
    """This process's peak resident memory (MB)."""
    import resource
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kb / 1024.0 if sys.platform != "darwin" else kb / 2 ** 20


# ------------------------------------------------- NumPy reference algorithms


def numpy_herding(features: np.ndarray, m: int) -> np.ndarray:
    """iCaRL Algorithm 4, vectorised in float64: with S the sum of the picked features,
    ||mu - (S + phi_i)/k||^2 = ||mu||^2 - 2/k (mu.S + mu.phi_i) + (||S||^2 + 2 S.phi_i + ||phi_i||^2)/k^2;
    mu.phi_i and ||phi_i||^2 are computed once, S.phi_i updated by phi @ phi_p per pick: O(n d)
    per pick and no [n, d] temporary. Ties go to the smallest index (np.argmin)."""
    features = np.asarray(features, np.float64)
    norms = np.linalg.norm(features, axis=1, keepdims=True)
    phi = features / np.where(norms > 0, norms, 1.0)
    mu = phi.mean(axis=0)
    mu_phi = phi @ mu
    phi_norm2 = np.einsum("ij,ij->i", phi, phi)
    mu_norm2 = mu @ mu
    s_phi = np.zeros(len(phi))
    mu_s = s_norm2 = 0.0
    taken = np.zeros(len(phi), bool)
    chosen = []
    for k in range(1, m + 1):
        dist = mu_norm2 - 2.0 / k * (mu_s + mu_phi) + (s_norm2 + 2.0 * s_phi + phi_norm2) / (k * k)
        dist[taken] = np.inf
        p = int(np.argmin(dist))
        chosen.append(p)
        taken[p] = True
        mu_s += mu_phi[p]
        s_norm2 += 2.0 * s_phi[p] + phi_norm2[p]
        s_phi += phi @ phi[p]
    return np.array(chosen, dtype=np.int64)


def numpy_class_means(features: np.ndarray, labels: np.ndarray, n_classes: int) -> np.ndarray:
    """iCaRL's class means: mean of the normalised features, normalised (float64)."""
    phi = np.asarray(features, np.float64)
    phi = phi / np.maximum(np.linalg.norm(phi, axis=1, keepdims=True), 1e-300)
    means = np.stack([phi[labels == c].mean(axis=0) for c in range(n_classes)])
    return means / np.linalg.norm(means, axis=1, keepdims=True)


def numpy_nme(features: np.ndarray, means: np.ndarray) -> np.ndarray:
    """Nearest normalised mean (float64): one matrix product and an argmin."""
    phi = np.asarray(features, np.float64)
    phi = phi / np.maximum(np.linalg.norm(phi, axis=1, keepdims=True), 1e-300)
    means = np.asarray(means, np.float64)
    return np.argmin((means ** 2).sum(1)[None, :] - 2 * phi @ means.T, axis=1)


# ------------------------------------------------------ PyTorch twin models


def torch_cifar_resnet(depth: int, in_channels: int, n_classes: int):
    """Our ``resnet{depth}`` (aidge_incremental/models/resnet_cifar.py) in PyTorch:
    3x3 conv 16 + BN + ReLU, three stages of (depth - 2) / 6 basic blocks (16, 32,
    64 filters, stride 2 at the first block of stages 2 and 3), option-A
    shortcuts (subsample by 2, zero channels split before/after), no ReLU after
    the last block, global average pooling; ``head`` is a separate Linear
    (``model.head``) so that it can grow. Parameter names follow ours
    (:func:`load_our_weights`)."""
    import torch
    nn = torch.nn
    n = (depth - 2) // 6

    class Block(nn.Module):
        def __init__(self, cin, cout, stride, relu_out):
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(cout)
            self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(cout)
            self.stride, self.extra, self.relu_out = stride, cout - cin, relu_out

        def forward(self, x):
            y = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
            s = x[:, :, ::2, ::2] if self.stride != 1 else x
            if self.extra:
                s = nn.functional.pad(s, (0, 0, 0, 0, self.extra // 2, self.extra - self.extra // 2))
            y = y + s
            return torch.relu(y) if self.relu_out else y

    class ResNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(in_channels, 16, 3, 1, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(16)
            blocks, cin = [], 16
            for s, width in enumerate((16, 32, 64), start=1):
                for i in range(1, n + 1):
                    last = s == 3 and i == n
                    blocks.append((f"stage{s}_block{i}", Block(cin, width, 2 if (s > 1 and i == 1) else 1,
                                                              relu_out=not last)))
                    cin = width
            self.blocks = nn.ModuleDict(blocks)
            self.head = nn.Linear(64, n_classes)

        def features(self, x):
            x = torch.relu(self.bn1(self.conv1(x)))
            for block in self.blocks.values():
                x = block(x)
            return x.mean(dim=(2, 3))

        def forward(self, x):
            return self.head(self.features(x))

    return ResNet()


def load_our_weights(net, params: Dict[str, np.ndarray]) -> None:
    """Copy our model's ``state_dict()`` (producer names) into :func:`torch_cifar_resnet`."""
    import torch
    bn_names = {"scale": "weight", "shift": "bias", "batch_mean": "running_mean", "batch_variance": "running_var"}
    state = {}
    for name, value in params.items():
        match = re.fullmatch(r"(.*)_(w|b|scale|shift|batch_mean|batch_variance)", name)
        if match is None:
            raise KeyError(name)
        layer, kind = match.groups()
        if layer.startswith("stage"):
            block, sub = re.fullmatch(r"(stage\d+_block\d+)_(\w+)", layer).groups()
            layer = f"blocks.{block}.{sub}"
        field = {"w": "weight", "b": "bias"}.get(kind, bn_names.get(kind))
        state[f"{layer}.{field}"] = torch.from_numpy(np.ascontiguousarray(value))
    missing = set(net.state_dict()) - set(state) - {k for k in net.state_dict() if k.endswith("num_batches_tracked")}
    if missing:
        raise KeyError(f"weights missing for {sorted(missing)}")
    with torch.no_grad():
        for key, value in state.items():
            net.state_dict()[key].copy_(value)
