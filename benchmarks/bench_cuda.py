"""iCaRL training-step time on Aidge's CUDA backend against its CPU backend.

One iCaRL step (Rebuffi et al. 2017) as this package runs it: a frozen teacher
forward, the student forward, cross-entropy on the batch labels plus BCE
distillation (T = 1, iCaRL's) on the old classes -- both our operators --,
backward, one SGD update. Models: the package's own (IncrementalModel):
the CIFAR ResNet-32 with BatchNorm (He et al. 2016; on the cpu backend our
fast kernels, which train BatchNorm) and a 3072-256-256 MLP. The same model
runs on both backends; steps are interleaved (cpu, cuda, cpu, cuda, ...) and
each backend's median is reported with the ratio.

Needs an NVIDIA GPU, the [cuda] extra and our CUDA kernels
(AIDGE_INCREMENTAL_CUDA=1); `--backends cpu` runs the CPU half anywhere.

    python benchmarks/bench_cuda.py --model resnet32 --batch 128 --steps 5
    python benchmarks/bench_cuda.py --model mlp --batch 128 --steps 20
"""
import argparse
import ctypes
import os
import sys

import numpy as np

import aidge_incremental  # noqa: F401  (first: one OpenMP runtime, see backend/_openmp_preload.py)
from aidge_incremental.backend import _cuda_preload, cuda, to_tensor
from aidge_incremental.loss import cross_entropy, distillation, tensor_value
from aidge_incremental.models import IncrementalModel
from aidge_incremental.training.loop import fast_sgd

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import interleaved, median, print_environment  # noqa: E402

INPUT = (3, 32, 32)
MODELS = {"resnet32": {}, "mlp": {"hidden": (256, 256)}}


class ICaRLStep:
    """Teacher + student models of one backend and the two losses."""

    def __init__(self, model, backend, batch, n_old, n_new, seed):
        rng = np.random.default_rng(seed)
        n_classes = n_old + n_new
        self.backend, self.n_old = backend, n_old
        self.student = IncrementalModel(model, INPUT, n_classes=n_classes, seed=seed, backend=backend,
                                        **MODELS[model])
        # the frozen previous model: weights of its own, inference mode
        self.teacher = IncrementalModel(model, INPUT, n_classes=n_classes, seed=seed + 1, backend=backend,
                                        **MODELS[model])
        self.student.set_training(True)
        labels = rng.integers(n_old, n_classes, batch)  # the step's new classes
        self.x = to_tensor(rng.standard_normal((batch, *INPUT)).astype(np.float32), backend)
        self.target = to_tensor(np.eye(n_classes, dtype=np.float32)[labels], backend)
        self.teacher_logits = to_tensor(np.zeros((batch, n_classes), np.float32), backend)
        parameters = self.student.parameter_nodes()
        self.fast = fast_sgd(parameters, 0.9, 0.0, backend)
        if self.fast is None:
            import aidge_learning
            self.optimizer = aidge_learning.SGD(momentum=0.9)
            self.optimizer.set_learning_rate_scheduler(aidge_learning.constant_lr(0.01))
            self.optimizer.set_parameters(parameters)
        self.losses = (None, None)
        self._sync = lambda: None
        if backend == "cuda":
            self._sync = ctypes.CDLL(_cuda_preload.loaded["libcudart.so.12"]).cudaDeviceSynchronize

    def __call__(self):
        self.teacher.scheduler.forward(data=[self.x])
        self.teacher_logits.copy_from(self.teacher.output)
        self.student.scheduler.forward(data=[self.x])
        ce = cross_entropy(self.student.output, self.target)
        kd = distillation(self.student.output, self.teacher_logits, temperature=1.0, n_old=self.n_old,
                          form="bce", accumulate=True)
        if self.fast is not None:
            self.fast.reset_grad()
            self.student.scheduler.backward()
            self.fast.update(0.01)
        else:
            self.optimizer.reset_grad()
            self.student.scheduler.backward()
            self.optimizer.update()
        self._sync()
        self.losses = (ce, kd)

    def loss(self):
        return [tensor_value(t) for t in self.losses]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", choices=sorted(MODELS), default="resnet32")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--old", type=int, default=50, help="classes the teacher knows (distilled)")
    parser.add_argument("--new", type=int, default=10, help="classes of the current step")
    parser.add_argument("--steps", type=int, default=5, help="timed steps per backend (after 1 warm-up)")
    parser.add_argument("--backends", default="cpu,cuda")
    args = parser.parse_args(argv)
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    if "cuda" in backends:
        status = cuda.ensure_cuda_backend()  # clear RuntimeError without GPU/driver/kernels
        print(f"CUDA driver {status.driver_version}, {status.device_count} GPU(s), "
              f"kernels built with CUDA {status.kernels_built_with}")
    print_environment("bench_cuda: an iCaRL step on Aidge's CUDA backend against the cpu one", torch_too=False)
    steps = {b: ICaRLStep(args.model, b, args.batch, args.old, args.new, seed=0) for b in backends}
    # one untimed step of each first (allocations, cuDNN's algorithm choice, our autotune)
    times = dict(zip(backends, interleaved([steps[b] for b in backends], args.steps)))
    print(f"iCaRL step, {args.model}, batch {args.batch}, {args.old} old + {args.new} new classes, "
          f"median of {args.steps} (after 1 warm-up):")
    for b in backends:
        ce, kd = steps[b].loss()
        print(f"  {b:5s} {1000 * median(times[b]):10.1f} ms/step "
              f"(min {1000 * min(times[b]):.1f}; last losses: CE {ce:.4f}, KD {kd:.4f})")
    if "cpu" in times and "cuda" in times:
        print(f"  speed-up cuda vs cpu: {median(times['cpu']) / median(times['cuda']):.1f}x")


if __name__ == "__main__":
    main()
