"""Forward + backward time of our loss operators, side by side in one run.

Distillation: our Distillation node run by Aidge's scheduler, our loss function
(which runs the operator), aidge_learning.loss.KD (upstream, a different and
inconsistent definition; see README), a vectorised NumPy implementation, and
PyTorch when installed. Cross-entropy: our function (CrossEntropy operator) vs
aidge_learning.loss.CELoss and PyTorch. Attention distillation (LwM): our
function (AttentionDistillation operator) vs NumPy and PyTorch.

    python benchmarks/bench_distillation.py [--repeat 50]
"""
import argparse
import os
import sys

import aidge_incremental as ai  # first: one OpenMP runtime (see backend/_openmp_preload.py)
import aidge_core
import aidge_learning
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import interleaved, median, print_environment  # noqa: E402

from aidge_incremental.loss import attention_distillation, cross_entropy, distillation

SIZES = [(128, 100), (256, 1000)]
TEMPERATURE = 2.0


def print_rows(size: str, rows, repeat: int, width: int) -> None:
    """Time each (name, fn) of ``rows``, interleaved in one run (median); ratios against the first."""
    samples = interleaved([fn for _, fn in rows], repeat)
    reference = None
    for (name, _), t in zip(rows, samples):
        ms = median(t) * 1e3
        reference = reference or ms
        print(f"{size:>16} | {name:<28} | {ms:10.3f} | {ms / reference:10.2f}x")
    print("-" * width)


def numpy_kd(s, t, temperature):
    zs, zt = s / temperature, t / temperature
    ls = zs - zs.max(1, keepdims=True)
    ls -= np.log(np.exp(ls).sum(1, keepdims=True))
    lt = zt - zt.max(1, keepdims=True)
    lt -= np.log(np.exp(lt).sum(1, keepdims=True))
    pt = np.exp(lt)
    value = temperature ** 2 * np.mean(np.sum(pt * (lt - ls), 1))
    grad = temperature / s.shape[0] * (np.exp(ls) - pt)
    return value, grad


def node_runner(s, t):
    node = ai.Distillation(TEMPERATURE, 0, "kl")
    student = aidge_core.Producer(aidge_core.Tensor(s), "student")
    teacher = aidge_core.Producer(aidge_core.Tensor(t), "teacher")
    student.add_child(node, 0, 0)
    teacher.add_child(node, 0, 1)
    graph = aidge_core.GraphView()
    for n in (node, student, teacher):
        graph.add(n)
    graph.compile("cpu", aidge_core.dtype.float32)
    scheduler = aidge_core.SequentialScheduler(graph)
    loss = node.get_operator().get_output(0)

    def run():
        scheduler.forward()  # the node seeds d loss / d loss = 1 itself
        scheduler.backward()
    return run


def op_only_runner(s, t):
    """The node's own forward/backward, without the scheduler's bookkeeping."""
    node = ai.Distillation(TEMPERATURE, 0, "kl")
    op = node.get_operator()
    S, T = aidge_core.Tensor(s), aidge_core.Tensor(t)
    op.set_input(0, S)
    op.set_input(1, T)
    op.set_backend("cpu")
    op.set_datatype(aidge_core.dtype.float32)
    op.forward_dims()
    op.get_output(0).grad.ones()
    S.grad.zeros()

    impl = op.get_impl()  # holds a reference to op: keep op alive with it

    def run(op=op, impl=impl):
        impl.forward()  # the impl alone does not seed: the grad set above stays
        impl.backward()
    return run


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=50)
    args = parser.parse_args()
    try:
        import torch
        torch.set_num_threads(os.cpu_count() or 1)
    except ImportError:
        torch = None

    print_environment("bench_distillation: loss operators")
    print(f"median of {args.repeat} interleaved runs; float32 logits, T={TEMPERATURE}, n_old = all")
    header = f"{'batch x classes':>16} | {'implementation':<28} | {'fwd+bwd ms':>10} | {'vs our node':>11}"
    print(header)
    print("-" * len(header))
    rng = np.random.default_rng(0)
    for batch, classes in SIZES:
        s = rng.normal(0, 3, (batch, classes)).astype(np.float32)
        t = rng.normal(0, 3, (batch, classes)).astype(np.float32)
        S, Tt = aidge_core.Tensor(s), aidge_core.Tensor(t)
        rows = [
            ("aidge_incremental node (sched)", node_runner(s, t)),
            ("aidge_incremental node (op)", op_only_runner(s, t)),
            ("aidge_incremental.loss", lambda: distillation(S, Tt, TEMPERATURE)),
            ("aidge_learning.loss.KD", lambda: aidge_learning.loss.KD(S, Tt, TEMPERATURE)),
            ("numpy float32", lambda: numpy_kd(s, t, TEMPERATURE)),
            ("numpy float64", lambda: numpy_kd(s.astype(np.float64), t.astype(np.float64), TEMPERATURE)),
        ]
        if torch is not None:
            ts = torch.tensor(s, requires_grad=True)
            tt = torch.tensor(t)

            def torch_kd():
                ts.grad = None
                loss = torch.nn.functional.kl_div(
                    torch.log_softmax(ts / TEMPERATURE, 1), torch.log_softmax(tt / TEMPERATURE, 1),
                    reduction="batchmean", log_target=True) * TEMPERATURE ** 2
                loss.backward()
            rows.append((f"torch {torch.__version__}", torch_kd))
        print_rows(f'{batch} x {classes}', rows, args.repeat, len(header))

    print("cross-entropy (one-hot targets), fwd+bwd")
    for batch, classes in SIZES:
        s = rng.normal(0, 3, (batch, classes)).astype(np.float32)
        y = np.eye(classes, dtype=np.float32)[rng.integers(0, classes, batch)]
        S, Y = aidge_core.Tensor(s), aidge_core.Tensor(y)
        rows = [("aidge_incremental.loss", lambda: cross_entropy(S, Y)),
                ("aidge_learning.loss.CELoss", lambda: aidge_learning.loss.CELoss(S, Y))]
        if torch is not None:
            ts, labels = torch.tensor(s, requires_grad=True), torch.tensor(y.argmax(1))

            def torch_ce():
                ts.grad = None
                torch.nn.functional.cross_entropy(ts, labels).backward()
            rows.append((f"torch {torch.__version__}", torch_ce))
        print_rows(f'{batch} x {classes}', rows, args.repeat, len(header))

    print("attention distillation (LwM), fwd+bwd, features [B, C, H, W]")
    for dims in [(64, 32, 5, 5), (128, 512, 4, 4)]:
        a = np.maximum(rng.normal(size=dims), 0).astype(np.float32)
        alpha = rng.normal(size=dims[:2]).astype(np.float32)
        qt = np.maximum(rng.normal(size=(dims[0], *dims[2:])), 0).astype(np.float32)
        A, W, Q = aidge_core.Tensor(a), aidge_core.Tensor(alpha), aidge_core.Tensor(qt)

        def numpy_ad():
            z = np.einsum("bc,bchw->bhw", alpha, a).reshape(len(a), -1)
            q = np.maximum(z, 0)
            n = np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
            v = qt.reshape(len(a), -1)
            v = v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
            u = q / n
            sg = np.sign(u - v)
            g = (sg - u * (sg * u).sum(1, keepdims=True)) / n * (z > 0) / len(a)
            return np.abs(u - v).sum(1).mean(), np.einsum("bc,bp->bcp", alpha, g)
        rows = [("aidge_incremental.loss", lambda: attention_distillation(A, W, Q)),
                ("numpy float32", numpy_ad)]
        if torch is not None:
            ta, tw, tq = torch.tensor(a, requires_grad=True), torch.tensor(alpha), torch.tensor(qt)

            def torch_ad():
                ta.grad = None
                F = torch.nn.functional
                q = F.relu(torch.einsum("bc,bchw->bhw", tw, ta)).flatten(1)
                (F.normalize(q, dim=1) - F.normalize(tq.flatten(1), dim=1)).abs().sum(1).mean().backward()
            rows.append((f"torch {torch.__version__}", torch_ad))
        print_rows('x'.join(map(str, dims)), rows, args.repeat, len(header))


if __name__ == "__main__":
    main()
