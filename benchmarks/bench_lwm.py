"""Split MNIST with LeNet, no exemplars: LwM vs LwF vs Finetune (and LwM with
gamma = 0, i.e. without its attention term; with its Grad-CAM weights held
constant; with the cross-entropy over every class seen), all-class and old-class
accuracy after each step, mean ± std over seeds.

    python benchmarks/bench_lwm.py --data-dir /work/shared/data/mnist

MNIST t10k only: split 80/20 (stratified, seed 0) into train and test parts
(``load_mnist``). To keep a run to minutes on a shared 2-core CPU (Aidge's
convolution backward is slow, and LwM adds two Grad-CAM passes per batch),
each class keeps ``--train-per-class`` training images (drawn with a fixed
seed); the test part is whole. 5 steps of 2 classes; the class order comes
from the seed. Exits cleanly (status 0, a message) without the data.

"all": accuracy on the test images of every class seen (over all outputs);
"old": on the test images of the classes learnt before the step.
"""
import argparse
import pathlib
import sys
import time

import numpy as np

from aidge_incremental.datasets import load_mnist
from aidge_incremental.experiment import ExperimentConfig, build_method
from aidge_incremental.scenario import ClassIncrementalScenario

VARIANTS = {
    "finetune": ("finetune", {}),
    "lwf": ("lwf", {}),
    "lwm": ("lwm", {}),
    "lwm(gamma=0)": ("lwm", {"attention_weight": 0.0}),
    "lwm(first-order)": ("lwm", {"attention_gradient": "first_order"}),
    "lwm(CE seen)": ("lwm", {"classification_loss": "seen"}),
    "lwm(gamma=0.3)": ("lwm", {"attention_weight": 0.3}),
    "lwm(gamma=0.1)": ("lwm", {"attention_weight": 0.1}),
}


def run(dataset, method_name, options, seed, args):
    config = ExperimentConfig(method=method_name, model="lenet", hidden=args.hidden, epochs=args.epochs,
                              lr=args.lr, batch_size=args.batch_size, initial=2, increment=2, seed=seed,
                              **options)
    scenario = ClassIncrementalScenario(dataset, 2, 2, seed=seed)
    method = build_method(config, dataset.input_shape, scenario)
    rows = []
    for t in range(scenario.n_steps):
        step = scenario.step(t)
        start = time.perf_counter()
        method.learn(step, dataset)
        seconds = time.perf_counter() - start
        predicted = method.predict(dataset.to_input(step.x_test))
        correct = predicted == step.y_test
        old = step.y_test < step.n_seen - len(step.classes)
        rows.append((float(correct.mean()), float(correct[old].mean()) if old.any() else np.nan, seconds))
    return np.array(rows)  # [steps, (all, old, seconds)]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None, help="folder with t10k-images/labels IDX files")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS)[:6], choices=list(VARIANTS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--train-per-class", type=int, default=50)
    parser.add_argument("--hidden", type=int, nargs="+", default=[64])
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--batch-size", type=int, default=16)
    args = parser.parse_args(argv)
    if args.data_dir is None or not pathlib.Path(args.data_dir).is_dir():
        print(f"skipped: no MNIST folder (--data-dir {args.data_dir})")
        return 0
    dataset = load_mnist(args.data_dir).per_class(args.train_per_class, seed=0)
    print(f"MNIST: {len(dataset.x_train)} train / {len(dataset.x_test)} test images ({dataset.note})")
    print(f"5 steps of 2 classes, LeNet (conv16-conv32-fc{'-'.join(map(str, args.hidden))}), no exemplars, "
          f"{args.epochs} epochs/step, SGD lr {args.lr} momentum 0.9, batch {args.batch_size}, "
          f"seeds {args.seeds}; LwM/LwF at their declared defaults")
    results = {}
    for name in args.variants:
        method_name, options = VARIANTS[name]
        results[name] = np.stack([run(dataset, method_name, options, s, args) for s in args.seeds])
        r = results[name]
        cells = [f"{100 * np.nanmean(r[:, t, 0]):5.1f}±{100 * np.nanstd(r[:, t, 0]):4.1f}"
                 + ("" if t == 0 else f" / {100 * np.nanmean(r[:, t, 1]):5.1f}±{100 * np.nanstd(r[:, t, 1]):4.1f}")
                 for t in range(r.shape[1])]
        print(f"{name:<13} " + " | ".join(cells) + f"   ({r[:, :, 2].sum(1).mean():.0f} s/seed)", flush=True)
    print("cells: step t: all-class % / old-class % (mean±std over seeds)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
