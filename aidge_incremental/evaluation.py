"""Evaluation of class-incremental runs.

The accuracy matrix ``A[t, j]`` is the accuracy, after learning step ``t``,
on the test samples of the classes that step ``j`` brought (NaN for j > t).
The metrics follow their usual definitions:

- average incremental accuracy (Rebuffi et al. 2017): mean over steps of the
  accuracy on all classes seen so far;
- last-step accuracy: that accuracy after the last step;
- average forgetting (Chaudhry et al. 2018): mean over old step groups of
  the drop from their best accuracy to their final one;
- backward transfer, BWT (Lopez-Paz & Ranzato 2017): mean over old step
  groups of final accuracy minus accuracy right after learning them.

From a classifier's scores (one column per class seen, the higher the
likelier) come two more, as FACIL reports them:

- top-5 accuracy: the true class among the 5 highest scores (recorded once
  more than 5 classes are seen; a true class tied with the 5th counts);
- task-aware accuracy (FACIL's TAw, beside the task-agnostic TAg above): each
  test sample classified among the classes of its own step only, the step
  being given, as in task-incremental learning.

The confusion matrix of the last step recorded (rows: true class, columns:
predicted class, both in the order the classes were learnt; a last column
counts the samples a classifier assigned to no class, NME's -1).

:meth:`RunResult.write` writes ``results.json``, ``results.csv``, the
per-epoch training log ``log.csv``, ``accuracy_matrix.csv``,
``confusion.csv`` and the heatmap ``matrix.png``.
"""
from __future__ import annotations

import csv
import io
import json
import math
import pathlib
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

import numpy as np

from .files import atomic_write

__all__ = ["ClassifierHistory", "RunResult", "TOP_K", "average_forgetting", "average_incremental_accuracy",
           "backward_transfer", "confusion_matrix", "matrix_figure", "plot_accuracy", "plot_matrix", "task_aware_predictions",
           "top_k_accuracy"]

#: the k of the top-k accuracy recorded (the ImageNet convention, as PyCIL's top-5)
TOP_K = 5


def average_incremental_accuracy(acc_seen: Sequence[float]) -> float:
    return float(np.mean(acc_seen))


def average_forgetting(matrix: np.ndarray) -> float:
    """Mean over groups j < T-1 of max_{j <= t < T-1} A[t, j] - A[T-1, j]; 0 for one step."""
    matrix = np.asarray(matrix, float)
    last = len(matrix) - 1
    if last == 0:
        return 0.0
    return float(np.mean([matrix[j:last, j].max() - matrix[last, j] for j in range(last)]))


def backward_transfer(matrix: np.ndarray) -> float:
    """Mean over groups j < T-1 of A[T-1, j] - A[j, j]; 0 for one step."""
    matrix = np.asarray(matrix, float)
    last = len(matrix) - 1
    if last == 0:
        return 0.0
    return float(np.mean([matrix[last, j] - matrix[j, j] for j in range(last)]))


def top_k_accuracy(y_true: np.ndarray, scores: np.ndarray, k: int = TOP_K) -> float:
    """Fraction of samples whose true class is among the ``k`` highest scores
    (fewer than ``k`` classes score strictly higher than it)."""
    y_true, scores = np.asarray(y_true), np.asarray(scores, np.float64)
    own = scores[np.arange(len(y_true)), y_true]
    return float(np.mean(np.sum(scores > own[:, None], axis=1) < k))


def task_aware_predictions(y_true: np.ndarray, scores: np.ndarray, groups: Sequence[np.ndarray]) -> np.ndarray:
    """Each sample's prediction among the classes of its own group (step) only."""
    y_true, scores = np.asarray(y_true), np.asarray(scores, np.float64)
    predicted = np.full(len(y_true), -1, np.int64)
    for group in groups:
        group = np.asarray(group)
        rows = np.isin(y_true, group)
        if rows.any():
            predicted[rows] = group[scores[np.ix_(rows, group)].argmax(axis=1)]
    return predicted


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Counts [n_classes, n_classes + 1]: row = true class, column = predicted
    class; the last column counts predictions of no class (outside 0..n-1)."""
    y_true, y_pred = np.asarray(y_true, np.int64), np.asarray(y_pred, np.int64)
    column = np.where((y_pred >= 0) & (y_pred < n_classes), y_pred, n_classes)
    out = np.zeros((n_classes, n_classes + 1), np.int64)
    np.add.at(out, (y_true, column), 1)
    return out


def _nan_to_none(values):
    return [None if isinstance(v, float) and math.isnan(v) else v for v in values]


def _at(values, t: int) -> float:
    """values[t], NaN where nothing was recorded (a history built by hand, older results)."""
    return values[t] if t < len(values) else float("nan")


def _none_to_nan(values):
    return [float("nan") if v is None else v for v in values]


@dataclass
class ClassifierHistory:
    """What one classifier scored, step after step (NaN where a figure does not apply)."""
    matrix: List[List[float]] = field(default_factory=list)   # A[t][j], j <= t
    acc_seen: List[float] = field(default_factory=list)
    acc_old: List[float] = field(default_factory=list)       # NaN at step 0
    acc_new: List[float] = field(default_factory=list)
    #: top-5 accuracy on the seen classes (NaN with 5 classes or fewer, or without scores)
    acc_top5: List[float] = field(default_factory=list)
    #: task-aware accuracy: matrix and accuracy on the seen classes (NaN without scores)
    matrix_task_aware: List[List[float]] = field(default_factory=list)
    acc_seen_task_aware: List[float] = field(default_factory=list)
    #: confusion matrix of the last step recorded (see :func:`confusion_matrix`)
    confusion: List[List[int]] = field(default_factory=list)

    def record(self, y_true: np.ndarray, y_pred: np.ndarray, groups: Sequence[np.ndarray],
               scores: Optional[np.ndarray] = None) -> None:
        """One step's evaluation: labels, predictions (-1: no class), the classes
        of each step so far, and the scores [N, classes seen] if the classifier has them."""
        correct = y_true == y_pred
        rows = [np.isin(y_true, g) for g in groups]
        row = [float(correct[r].mean()) for r in rows]
        self.matrix.append(row)
        self.acc_seen.append(float(correct.mean()))
        old = np.isin(y_true, np.concatenate(groups[:-1])) if len(groups) > 1 else np.zeros_like(correct)
        self.acc_old.append(float(correct[old].mean()) if old.any() else float("nan"))
        self.acc_new.append(row[-1])
        n_seen = int(sum(len(g) for g in groups))
        nan = float("nan")
        if scores is not None:
            scores = np.asarray(scores)
            if scores.shape != (len(y_true), n_seen):
                raise ValueError(f"scores of shape {scores.shape}, expected ({len(y_true)}, {n_seen})")
            aware = task_aware_predictions(y_true, scores, groups) == y_true
            self.matrix_task_aware.append([float(aware[r].mean()) for r in rows])
            self.acc_seen_task_aware.append(float(aware.mean()))
            self.acc_top5.append(top_k_accuracy(y_true, scores) if n_seen > TOP_K else nan)
        else:
            self.matrix_task_aware.append([nan] * len(groups))
            self.acc_seen_task_aware.append(nan)
            self.acc_top5.append(nan)
        self.confusion = confusion_matrix(y_true, y_pred, n_seen).tolist()

    def square_matrix(self, task_aware: bool = False) -> np.ndarray:
        rows = self.matrix_task_aware if task_aware else self.matrix
        n = len(rows)
        out = np.full((n, n), np.nan)
        for t, row in enumerate(rows):
            out[t, :len(row)] = row
        return out

    def metrics(self) -> Dict[str, float]:
        """The metrics of the module docstring; the task-aware and top-5 ones only
        where they were recorded."""
        A = self.square_matrix()
        out = {
            "average_incremental_accuracy": average_incremental_accuracy(self.acc_seen),
            "last_accuracy": self.acc_seen[-1],
            "average_forgetting": average_forgetting(A),
            "backward_transfer": backward_transfer(A),
        }
        aware = self.acc_seen_task_aware
        if aware and not any(math.isnan(a) for a in aware):
            out.update(average_incremental_accuracy_task_aware=average_incremental_accuracy(aware),
                       last_accuracy_task_aware=aware[-1],
                       average_forgetting_task_aware=average_forgetting(self.square_matrix(task_aware=True)))
        if self.acc_top5 and not math.isnan(self.acc_top5[-1]):
            out["last_top5_accuracy"] = self.acc_top5[-1]
        return out

    def to_dict(self) -> dict:
        return {"matrix": self.matrix, "acc_seen": self.acc_seen, "acc_old": _nan_to_none(self.acc_old),
                "acc_new": self.acc_new, "acc_top5": _nan_to_none(self.acc_top5),
                "matrix_task_aware": [_nan_to_none(r) for r in self.matrix_task_aware],
                "acc_seen_task_aware": _nan_to_none(self.acc_seen_task_aware), "confusion": self.confusion,
                "metrics": self.metrics()}

    @classmethod
    def from_dict(cls, data: dict) -> "ClassifierHistory":
        # results written before top-5 / task-aware existed read back with NaN there
        n = len(data["acc_seen"])
        return cls(data["matrix"], data["acc_seen"], _none_to_nan(data["acc_old"]), data["acc_new"],
                   _none_to_nan(data.get("acc_top5", [None] * n)),
                   [_none_to_nan(r) for r in data.get("matrix_task_aware", [[None] * len(r)
                                                                           for r in data["matrix"]])],
                   _none_to_nan(data.get("acc_seen_task_aware", [None] * n)), data.get("confusion", []))


@dataclass
class RunResult:
    """Results of one method on one scenario."""
    method: str
    config: dict
    class_order: List[int]
    classifiers: Dict[str, ClassifierHistory]
    step_seconds: List[float] = field(default_factory=list)
    dataset_note: str = ""
    classes_seen: List[int] = field(default_factory=list)  #: after each step
    #: the training log, one row per epoch: step, epoch, loss, each loss term by name, lr,
    #: seconds, samples (see aidge_incremental.training.EpochRecord)
    epochs: List[dict] = field(default_factory=list)
    #: what the figures depend on besides the config (versions, BLAS kernel, threads, command):
    #: :func:`aidge_incremental.environment.environment` of the run (of its last part, if resumed)
    environment: dict = field(default_factory=dict)
    #: the scenario's number of steps (results are written after each step: fewer
    #: recorded means an unfinished run); 0: not recorded (results written at the end)
    n_steps: int = 0
    #: the trained method object after the last step (its model, memory, NME classifier) as
    #: run_experiment left it; not serialised (to_dict/from_dict drop it), None once read back
    trained_method: Optional[object] = field(default=None, repr=False, compare=False)
    #: a resumed run that was already complete: nothing was trained or written
    resumed_complete: bool = field(default=False, repr=False, compare=False)

    @property
    def complete(self) -> bool:
        """Whether every step of the scenario is recorded."""
        return self.n_steps == 0 or len(self.main.acc_seen) >= self.n_steps

    @property
    def main(self) -> ClassifierHistory:
        """The method's own classifier (NME for iCaRL, the head otherwise)."""
        return next(iter(self.classifiers.values()))

    def metrics(self) -> Dict[str, Dict[str, float]]:
        return {name: h.metrics() for name, h in self.classifiers.items()}

    def to_dict(self) -> dict:
        return {"method": self.method, "config": self.config, "class_order": self.class_order,
                "dataset_note": self.dataset_note, "step_seconds": self.step_seconds,
                "classes_seen": self.classes_seen, "epochs": self.epochs,
                "environment": self.environment, "n_steps": self.n_steps,
                "classifiers": {k: v.to_dict() for k, v in self.classifiers.items()}}

    @classmethod
    def from_dict(cls, data: dict) -> "RunResult":
        classifiers = {k: ClassifierHistory.from_dict(v) for k, v in data["classifiers"].items()}
        return cls(data["method"], data["config"], data["class_order"], classifiers,
                   data.get("step_seconds", []), data.get("dataset_note", ""),
                   data.get("classes_seen", []), list(data.get("epochs", [])), data.get("environment", {}),
                   data.get("n_steps", 0))

    def table(self) -> str:
        """Accuracy per step, one column per classifier, as text."""
        names = list(self.classifiers)
        head = f"{'step':>4} {'classes':>8} " + " ".join(f"{n + ' seen':>10} {n + ' old':>9} {n + ' new':>9}"
                                                          for n in names)
        lines = [head]
        for t in range(len(self.main.acc_seen)):
            cols = " ".join(f"{100 * h.acc_seen[t]:9.2f}% {_pct(h.acc_old[t]):>9} {100 * h.acc_new[t]:8.2f}%"
                            for h in self.classifiers.values())
            lines.append(f"{t:>4} {self.classes_seen[t]:>8} {cols}")
        for name, m in self.metrics().items():
            extra = ""
            if "last_accuracy_task_aware" in m:
                extra += f", task-aware last {100 * m['last_accuracy_task_aware']:.2f}%"
            if "last_top5_accuracy" in m:
                extra += f", top-5 last {100 * m['last_top5_accuracy']:.2f}%"
            lines.append(f"{self.method}/{name}: average incremental {100 * m['average_incremental_accuracy']:.2f}%, "
                         f"last {100 * m['last_accuracy']:.2f}%, forgetting {100 * m['average_forgetting']:.2f}%, "
                         f"BWT {100 * m['backward_transfer']:+.2f}%{extra}")
        return "\n".join(lines)

    def log_columns(self) -> List[str]:
        """Columns of ``log.csv``: step, epoch, loss, the loss terms in the order
        they first appear, lr, seconds, samples."""
        fixed = ("step", "epoch", "loss", "lr", "seconds", "samples")
        terms = list(dict.fromkeys(k for row in self.epochs for k in row if k not in fixed))
        return ["step", "epoch", "loss", *terms, "lr", "seconds", "samples"]

    def write(self, directory, plots: bool = True) -> None:
        """Every result file (module docstring), each written atomically;
        ``matrix.png`` unless ``plots`` is false."""
        directory = pathlib.Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        atomic_write(directory / "results.json", json.dumps(self.to_dict(), indent=2, allow_nan=False).encode())
        rows = [["method", "classifier", "step", "classes_seen", "acc_seen", "acc_old", "acc_new",
                 "acc_top5", "acc_seen_task_aware"]]
        for name, h in self.classifiers.items():
            for t in range(len(h.acc_seen)):
                rows.append([self.method, name, t, self.classes_seen[t], h.acc_seen[t], h.acc_old[t],
                             h.acc_new[t], _at(h.acc_top5, t), _at(h.acc_seen_task_aware, t)])
        atomic_write(directory / "results.csv", _csv(rows))
        columns = self.log_columns()
        atomic_write(directory / "log.csv", _csv([columns] + [[row.get(c, "") for c in columns]
                                                              for row in self.epochs]))
        n = len(self.main.acc_seen)
        rows = [["classifier", "kind", "after_step"] + [f"step_{j}" for j in range(n)]]
        for name, h in self.classifiers.items():
            for kind, matrix in (("task_agnostic", h.square_matrix()),
                                 ("task_aware", h.square_matrix(task_aware=True))):
                if kind == "task_aware" and np.isnan(np.diag(matrix)).all():
                    continue
                rows += [[name, kind, t] + ["" if np.isnan(v) else v for v in matrix[t]] for t in range(n)]
        atomic_write(directory / "accuracy_matrix.csv", _csv(rows))
        n_classes = self.classes_seen[-1] if self.classes_seen else 0
        labels = [str(c) for c in self.class_order[:n_classes]]
        rows = [["classifier", "true_class"] + labels + ["none"]]
        for name, h in self.classifiers.items():
            rows += [[name, labels[i]] + list(counts) for i, counts in enumerate(h.confusion)]
        atomic_write(directory / "confusion.csv", _csv(rows))
        if plots and n:
            plot_matrix({name: h.square_matrix() for name, h in self.classifiers.items()},
                        directory / "matrix.png", title=f"{self.method}: accuracy after each step")


def _csv(rows) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue().encode()


def _pct(v: float) -> str:
    return "-" if np.isnan(v) else f"{100 * v:.2f}%"


def plot_matrix(matrices: Dict[str, np.ndarray], path, title: str = "") -> None:
    """The accuracy matrices as heatmaps in a PNG (:func:`matrix_figure`)."""
    _save_figure(matrix_figure(matrices, title), path)


def matrix_figure(matrices: Dict[str, np.ndarray], title: str = ""):
    """The accuracy matrices as heatmaps, one panel per classifier: row = after
    step t, column = the classes of step j, the value (%) in each cell."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = max(len(m) for m in matrices.values())
    fig, axes = plt.subplots(1, len(matrices), figsize=(0.6 * n * len(matrices) + 1.6 * len(matrices), 0.6 * n + 1.4),
                             dpi=110, squeeze=False)
    for ax, (name, matrix) in zip(axes[0], matrices.items()):
        image = ax.imshow(100 * np.asarray(matrix, float), vmin=0, vmax=100, cmap="viridis")
        if n <= 20:
            for (t, j), value in np.ndenumerate(matrix):
                if not np.isnan(value):
                    ax.text(j, t, f"{100 * value:.0f}", ha="center", va="center", fontsize=7,
                            color="white" if value < 0.6 else "black")
        ax.set_title(name)
        ax.set_xlabel("classes of step")
        ax.set_ylabel("after step")
        ax.set_xticks(range(n))
        ax.set_yticks(range(n))
    fig.colorbar(image, ax=list(axes[0]), label="accuracy (%)")
    if title:
        fig.suptitle(title)
    return fig


def _save_figure(fig, path) -> None:
    import matplotlib.pyplot as plt
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    image = io.BytesIO()  # rendered here, then written like every file we write (atomic_write)
    fig.savefig(image, format="png")
    plt.close(fig)
    atomic_write(path, image.getvalue())


def plot_accuracy(curves: Dict[str, Sequence[float]], path, title: str = "", classes_per_step=None) -> None:
    """Accuracy on all seen classes after each step, one line per curve, as a PNG."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4), dpi=110)
    for label, acc in curves.items():
        steps = np.arange(1, len(acc) + 1)
        x = np.cumsum(classes_per_step)[:len(acc)] if classes_per_step is not None else steps
        ax.plot(x, 100 * np.asarray(acc), marker="o", label=label)
    ax.set_xlabel("number of classes seen" if classes_per_step is not None else "step")
    ax.set_ylabel("accuracy on seen classes (%)")
    ax.set_ylim(0, 100)
    ax.grid(alpha=0.3)
    ax.legend()
    if title:
        ax.set_title(title)
    fig.tight_layout()
    _save_figure(fig, path)
