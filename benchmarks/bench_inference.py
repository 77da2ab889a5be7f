"""One inference pass, ours against PyTorch's: a ResNet on a batch of images in
evaluation mode (what a run's teacher, herding/NME features and evaluation do),
from the same weights, interleaved.

    python benchmarks/bench_inference.py [--depth 20] [--images 1024] [--batch 128] [--threads 1]

Ours is ``IncrementalModel.logits`` (Aidge's scheduler over our fast kernels,
eval mode); PyTorch's the twin of benchmarks/common.py under ``torch.no_grad()``.
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--depth", type=int, default=20, choices=[20, 32, 44, 56])
    p.add_argument("--images", type=int, default=1024)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--size", type=int, default=28, help="image side (Fashion-MNIST: 28, CIFAR: 32)")
    p.add_argument("--channels", type=int, default=1)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args(argv)
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    from aidge_incremental.models import IncrementalModel
    import torch
    torch.set_num_threads(args.threads)
    common.print_environment("bench_inference: one eval-mode pass, ours against PyTorch")
    x = np.random.default_rng(0).normal(size=(args.images, args.channels, args.size, args.size)).astype(np.float32)
    model = IncrementalModel(f"resnet{args.depth}", x.shape[1:], n_classes=10, seed=0)
    net = common.torch_cifar_resnet(args.depth, args.channels, 10)
    common.load_our_weights(net, model.state_dict())
    net.eval()
    xt = torch.from_numpy(x)

    def ours():
        model.logits(x, batch_size=args.batch)

    def theirs():
        with torch.no_grad():
            for i in range(0, len(x), args.batch):
                net(xt[i:i + args.batch])

    ours(), theirs()  # autotune and allocations before timing
    times = common.interleaved([ours, theirs], repeats=args.repeats)
    with torch.no_grad():
        diff = np.abs(model.logits(x[:args.batch]) - net(xt[:args.batch]).numpy()).max()
    print(f"ResNet-{args.depth}, {args.images} images {args.channels}x{args.size}x{args.size}, batch {args.batch}, "
          f"{args.threads} thread(s), best of {args.repeats}: ours {common.fmt_ms(common.best(times[0])).strip()} ms "
          f"PyTorch {common.fmt_ms(common.best(times[1])).strip()} ms ({common.ratio(common.best(times[0]), common.best(times[1]))}); "
          f"max |logit difference| {diff:.1e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
