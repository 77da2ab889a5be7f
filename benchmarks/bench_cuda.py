"""iCaRL training-step time on Aidge's CUDA backend against its CPU backend.

One iCaRL step (Rebuffi et al. 2017) as this package runs it: a frozen teacher
forward, the student forward, cross-entropy on the batch labels plus BCE
distillation (T = 1, iCaRL's) on the old classes -- both our operators --,
backward, one SGD update. Models: a BN-free CIFAR ResNet-32 (He et al. 2016,
3 stages x 5 basic blocks, 16/32/64 channels, 1x1-conv shortcuts; global
average pooling as a frozen 8x8 convolution, because Aidge's CPU backend has
no GlobalAveragePooling backward) and a 3072-256-256 MLP. The same graph runs
on both backends; steps are interleaved (cpu, cuda, cpu, cuda, ...) and each
backend's median is reported with the ratio.

Needs an NVIDIA GPU, the [cuda] extra and our CUDA kernels
(AIDGE_INCREMENTAL_CUDA=1); `--backends cpu` runs the CPU half anywhere.

    python benchmarks/bench_cuda.py --model resnet32 --batch 128 --steps 5
    python benchmarks/bench_cuda.py --model mlp --batch 128 --steps 20
"""
import argparse
import ctypes
import statistics
import time

import numpy as np

import aidge_incremental as ai
from aidge_incremental.backend import _cuda_preload, cuda
import aidge_core
import aidge_learning

INPUT = (3, 32, 32)


def conv(graph, params, name, cin, cout, k, stride, rng, pad=True, zero=False):
    node = (aidge_core.PaddedConv2D(cin, cout, [k, k], name, stride_dims=[stride, stride],
                                    padding_dims=[k // 2] * 4, no_bias=True)
            if pad else aidge_core.Conv2D(cin, cout, [k, k], name, stride_dims=[stride, stride], no_bias=True))
    scale = 0.0 if zero else np.sqrt(2.0 / (cin * k * k))  # He et al. 2015
    params[f"{name}_w"] = (rng.standard_normal((cout, cin, k, k)) * scale).astype(np.float32)
    graph.add(node)
    return node


def relu(graph, name):
    node = aidge_core.ReLU(name=name)
    graph.add(node)
    return node


def resnet32(n_classes, rng):
    """BN-free CIFAR ResNet-32; returns (graph, first node, logits node, params, frozen names)."""
    graph, params = aidge_core.GraphView(), {}
    first = conv(graph, params, "conv0", 3, 16, 3, 1, rng)
    x = relu(graph, "relu0")
    first.add_child(x, 0, 0)
    cin = 16
    for stage, cout in enumerate((16, 32, 64)):
        for block in range(5):
            stride = 2 if stage > 0 and block == 0 else 1
            name = f"s{stage}b{block}"
            c1 = conv(graph, params, f"{name}_c1", cin, cout, 3, stride, rng)
            r1 = relu(graph, f"{name}_r1")
            # Fixup (Zhang et al. 2019, sec. 3): the last conv of each residual
            # branch starts at zero, so a BN-free ResNet starts as a stable
            # stack of identities instead of doubling its variance per block.
            c2 = conv(graph, params, f"{name}_c2", cout, cout, 3, 1, rng, zero=True)
            add = aidge_core.Add(name=f"{name}_add")
            out = relu(graph, f"{name}_r2")
            graph.add(add)
            x.add_child(c1, 0, 0)
            c1.add_child(r1, 0, 0)
            r1.add_child(c2, 0, 0)
            c2.add_child(add, 0, 0)
            if stride == 1 and cin == cout:
                x.add_child(add, 0, 1)
            else:
                short = conv(graph, params, f"{name}_sc", cin, cout, 1, stride, rng, pad=False)
                x.add_child(short, 0, 0)
                short.add_child(add, 0, 1)
            add.add_child(out, 0, 0)
            x, cin = out, cout
    gap = aidge_core.Conv2D(64, 64, [8, 8], "gap", no_bias=True)
    params["gap_w"] = (np.eye(64, dtype=np.float32)[:, :, None, None] / 64.0 * np.ones((1, 1, 8, 8), np.float32))
    flat = aidge_core.Flatten(1, name="flatten")
    head = aidge_core.FC(64, n_classes, name="head")
    params["head_w"] = (rng.standard_normal((n_classes, 64)) * np.sqrt(1.0 / 64)).astype(np.float32)
    params["head_b"] = np.zeros(n_classes, np.float32)
    for a, b in ((x, gap), (gap, flat), (flat, head)):
        a.add_child(b, 0, 0)
        graph.add(b)
    return graph, first, head, params, {"gap_w"}


def mlp(n_classes, rng):
    graph, params = aidge_core.GraphView(), {}
    flat = aidge_core.Flatten(1, name="flatten")
    graph.add(flat)
    previous, width = flat, int(np.prod(INPUT))
    for i, out in enumerate((256, 256, n_classes)):
        fc = aidge_core.FC(width, out, name=f"fc{i}")
        params[f"fc{i}_w"] = (rng.standard_normal((out, width)) * np.sqrt(2.0 / width)).astype(np.float32)
        params[f"fc{i}_b"] = np.zeros(out, np.float32)
        graph.add(fc)
        previous.add_child(fc, 0, 0)
        previous, width = fc, out
        if i < 2:
            r = relu(graph, f"relu{i}")
            previous.add_child(r, 0, 0)
            previous = r
    return graph, flat, previous, params, set()


MODELS = {"resnet32": resnet32, "mlp": mlp}


def on_backend(array, backend):
    tensor = aidge_core.Tensor(np.ascontiguousarray(array))
    tensor.to_backend(backend)
    return tensor


def load(graph, params, backend):
    for node in aidge_core.producers(graph):
        if node.name() in params:
            node.get_operator().get_output(0).copy_from(on_backend(params[node.name()], backend))


class ICaRLStep:
    """Teacher + student graphs and the two losses, compiled for one backend."""

    def __init__(self, model, backend, batch, n_old, n_new, seed):
        rng = np.random.default_rng(seed)
        n_classes = n_old + n_new
        self.backend = backend
        student, first, logits, params, frozen = MODELS[model](n_classes, rng)
        teacher, t_first, t_logits, t_params, _ = MODELS[model](n_classes, np.random.default_rng(seed + 1))
        data = rng.standard_normal((batch, *INPUT)).astype(np.float32)
        labels = rng.integers(n_old, n_classes, batch)  # the step's new classes
        onehot = np.eye(n_classes, dtype=np.float32)[labels]
        self.teacher_logits = aidge_core.Producer(aidge_core.Tensor(np.zeros((batch, n_classes), np.float32)),
                                                  "teacher_logits")
        target = aidge_core.Producer(aidge_core.Tensor(onehot), "target")
        ce = ai._core.CrossEntropy(name="ce")
        kd = ai.Distillation(1.0, n_old, "bce", name="kd")  # iCaRL: BCE, T = 1, old classes
        logits.add_child(ce, 0, 0)
        target.add_child(ce, 0, 1)
        logits.add_child(kd, 0, 0)
        self.teacher_logits.add_child(kd, 0, 1)
        for node in (ce, kd, target, self.teacher_logits):
            student.add(node)
        for graph, node in ((student, first), (teacher, t_first)):
            graph.set_ordered_inputs([(node, 0)])
            graph.compile(backend, aidge_core.dtype.float32, dims=[[batch, *INPUT]])
        teacher.set_ordered_outputs([(t_logits, 0)])
        load(student, params, backend)
        load(teacher, t_params, backend)
        self.t_out = t_logits.get_operator().get_output(0)
        self.losses = [ce.get_operator().get_output(0), kd.get_operator().get_output(0)]
        self.student_sched = aidge_core.SequentialScheduler(student)
        self.teacher_sched = aidge_core.SequentialScheduler(teacher)
        trainable = [p for p in aidge_core.producers(student) if p.name() in params and p.name() not in frozen]
        self.optimizer = aidge_learning.SGD(momentum=0.9)
        self.optimizer.set_learning_rate_scheduler(aidge_learning.constant_lr(0.01))
        self.optimizer.set_parameters(trainable)
        self.data = on_backend(data, backend)
        self._sync = lambda: None
        if backend == "cuda":
            self._sync = ctypes.CDLL(_cuda_preload.loaded["libcudart.so.12"]).cudaDeviceSynchronize

    def __call__(self):
        self.teacher_sched.forward(data=[self.data])
        self.teacher_logits.get_operator().get_output(0).copy_from(self.t_out)
        self.student_sched.forward(data=[self.data])
        self.optimizer.reset_grad()
        self.student_sched.backward()
        self.optimizer.update()
        self._sync()

    def loss(self):
        values = []
        for tensor in self.losses:
            copy = tensor.clone()
            copy.to_backend("cpu")
            values.append(float(np.array(copy)[0]))
        return values


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
    steps = {b: ICaRLStep(args.model, b, args.batch, args.old, args.new, seed=0) for b in backends}
    times = {b: [] for b in backends}
    for b in backends:
        steps[b]()  # warm-up (allocations, cuDNN algorithm choice)
    for _ in range(args.steps):
        for b in backends:  # interleaved
            start = time.perf_counter()
            steps[b]()
            times[b].append(time.perf_counter() - start)
    print(f"iCaRL step, {args.model}, batch {args.batch}, {args.old} old + {args.new} new classes, "
          f"median of {args.steps} (after 1 warm-up):")
    for b in backends:
        ce, kd = steps[b].loss()
        print(f"  {b:5s} {1000 * statistics.median(times[b]):10.1f} ms/step "
              f"(min {1000 * min(times[b]):.1f}; last losses: CE {ce:.4f}, KD {kd:.4f})")
    if "cpu" in times and "cuda" in times:
        print(f"  speed-up cuda vs cpu: {statistics.median(times['cpu']) / statistics.median(times['cuda']):.1f}x")


if __name__ == "__main__":
    main()
