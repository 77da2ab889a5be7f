"""Learning without Memorizing in one command: teacher vs student on the old classes.

    python examples/lwm_demo.py                                   # digits (embedded), no download
    python examples/lwm_demo.py --data-dir /work/shared/data/mnist # MNIST

Learns the first half of the classes (step 0), keeps that model as the teacher,
learns the second half with LwM (step 1, no exemplars), then prints the
teacher's and the student's accuracy on the old classes' test images (and the
same for Finetune with ``--compare``), and writes a PNG of the teacher's and
the student's Grad-CAM maps (for the teacher's top old class) over a few of
those images, as the seed repository's demo does.

The digits are 8x8, too small for LeNet's two conv/pool blocks: they are
upsampled 2x (nearest neighbour) to 16x16.
"""
import argparse
import sys

import numpy as np

from aidge_incremental.datasets import Dataset, load_digits, load_mnist
from aidge_incremental.experiment import ExperimentConfig, build_method
from aidge_incremental.gradcam import grad_cam, plot_grad_cam
from aidge_incremental.scenario import ClassIncrementalScenario


def upsampled_digits() -> Dataset:
    d = load_digits()
    up = lambda x: x.repeat(2, axis=-2).repeat(2, axis=-1)  # noqa: E731
    return Dataset("digits", up(d.x_train), d.y_train, up(d.x_test), d.y_test, d.max_value,
                   "scikit-learn digits upsampled 2x to 16x16; " + d.note)


def accuracy(model, x, y, n_old=None):
    logits = model.logits(x)
    if n_old is not None:  # among the old classes' outputs only
        logits = logits[:, :n_old]
    return float(np.mean(logits.argmax(1) == y))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None, help="MNIST folder (default: the embedded digits)")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--attention-weight", type=float, default=1.0, help="gamma (0: no attention term)")
    parser.add_argument("--compare", action="store_true", help="also run Finetune from the same teacher")
    parser.add_argument("--png", default="lwm_gradcam.png", help="teacher vs student Grad-CAM maps")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    dataset = load_mnist(args.data_dir) if args.data_dir else upsampled_digits()
    half = len(dataset.classes) // 2
    scenario = ClassIncrementalScenario(dataset, half, len(dataset.classes) - half, seed=args.seed)
    common = dict(model="lenet", hidden=[64], epochs=args.epochs, lr=0.05, batch_size=32, seed=args.seed,
                  initial=half, increment=len(dataset.classes) - half)
    print(f"{dataset.name}: {scenario.describe()}")
    method = build_method(ExperimentConfig(method="lwm", attention_weight=args.attention_weight, **common),
                          dataset.input_shape, scenario)
    method.learn(scenario.step(0), dataset)
    teacher = method.model.clone()
    step = scenario.step(1)
    old = step.y_test < half
    x_old, y_old = dataset.to_input(step.x_test[old]), step.y_test[old]

    students = {"lwm": method}
    if args.compare:
        finetune = build_method(ExperimentConfig(method="finetune", **common), dataset.input_shape, scenario)
        finetune.model.load_state_dict(teacher.state_dict())
        finetune.model.rng_state = teacher.rng_state  # the same new head rows as LwM's
        finetune.n_known = method.n_known
        students["finetune"] = finetune
    for student in students.values():
        student.learn(step, dataset)

    x_new, y_new = dataset.to_input(step.x_test[~old]), step.y_test[~old]
    print(f"old classes {scenario.original_labels(np.arange(half)).tolist()}: {len(y_old)} test images")
    print(f"{'model':<18} {'old (all outputs)':>18} {'old (old outputs)':>18} {'new classes':>12}")
    print(f"{'teacher (step 0)':<18} {100 * accuracy(teacher, x_old, y_old):17.1f}% {'':>18} {'-':>12}")
    for name, student in students.items():
        print(f"{name + ' student':<18} {100 * accuracy(student.model, x_old, y_old):17.1f}% "
              f"{100 * accuracy(student.model, x_old, y_old, half):17.1f}% "
              f"{100 * accuracy(student.model, x_new, y_new):11.1f}%")

    show = np.arange(min(6, len(x_old)))
    b = teacher.logits(x_old[show])[:, :half].argmax(1)  # the teacher's top old class
    maps_t = grad_cam(teacher, x_old[show], b).maps
    maps_s = grad_cam(method.model, x_old[show], b).maps
    labels = scenario.original_labels(b)
    plot_grad_cam(args.png, step.x_test[old][show], maps_t, maps_s, titles=[f"class {c}" for c in labels])
    print(f"Grad-CAM maps of the teacher and the LwM student (layer {method.layer}): {args.png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
