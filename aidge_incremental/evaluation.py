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
"""
from __future__ import annotations

import json
import os
import pathlib
from dataclasses import asdict, dataclass, field
from typing import Dict, List, Optional, Sequence

import numpy as np

from .files import atomic_write

__all__ = ["ClassifierHistory", "RunResult", "average_forgetting",
           "average_incremental_accuracy", "backward_transfer", "plot_accuracy"]


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


@dataclass
class ClassifierHistory:
    """What one classifier scored, step after step."""
    matrix: List[List[float]] = field(default_factory=list)   # A[t][j], j <= t
    acc_seen: List[float] = field(default_factory=list)
    acc_old: List[float] = field(default_factory=list)       # NaN at step 0
    acc_new: List[float] = field(default_factory=list)

    def record(self, y_true: np.ndarray, y_pred: np.ndarray, groups: Sequence[np.ndarray]) -> None:
        correct = y_true == y_pred
        row = [float(correct[np.isin(y_true, g)].mean()) for g in groups]
        self.matrix.append(row)
        self.acc_seen.append(float(correct.mean()))
        old = np.isin(y_true, np.concatenate(groups[:-1])) if len(groups) > 1 else np.zeros_like(correct)
        self.acc_old.append(float(correct[old].mean()) if old.any() else float("nan"))
        self.acc_new.append(row[-1])

    def square_matrix(self) -> np.ndarray:
        n = len(self.matrix)
        out = np.full((n, n), np.nan)
        for t, row in enumerate(self.matrix):
            out[t, :len(row)] = row
        return out

    def metrics(self) -> Dict[str, float]:
        A = self.square_matrix()
        return {
            "average_incremental_accuracy": average_incremental_accuracy(self.acc_seen),
            "last_accuracy": self.acc_seen[-1],
            "average_forgetting": average_forgetting(A),
            "backward_transfer": backward_transfer(A),
        }


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
    #: what the figures depend on besides the config (versions, BLAS kernel, threads, command):
    #: :func:`aidge_incremental.environment.environment` of the run (of its last part, if resumed)
    environment: dict = field(default_factory=dict)
    #: the trained method object after the last step (its model, memory, NME classifier) as
    #: run_experiment left it; not serialised (to_dict/from_dict drop it), None once read back
    trained_method: Optional[object] = field(default=None, repr=False, compare=False)

    @property
    def main(self) -> ClassifierHistory:
        """The method's own classifier (NME for iCaRL, the head otherwise)."""
        return next(iter(self.classifiers.values()))

    def metrics(self) -> Dict[str, Dict[str, float]]:
        return {name: h.metrics() for name, h in self.classifiers.items()}

    def to_dict(self) -> dict:
        return {"method": self.method, "config": self.config, "class_order": self.class_order,
                "dataset_note": self.dataset_note, "step_seconds": self.step_seconds,
                "classes_seen": self.classes_seen, "environment": self.environment,
                "classifiers": {k: {**asdict(v), "acc_old": [None if np.isnan(a) else a for a in v.acc_old],
                                    "metrics": v.metrics()} for k, v in self.classifiers.items()}}

    @classmethod
    def from_dict(cls, data: dict) -> "RunResult":
        classifiers = {k: ClassifierHistory(v["matrix"], v["acc_seen"],
                                            [float("nan") if a is None else a for a in v["acc_old"]],
                                            v["acc_new"])
                       for k, v in data["classifiers"].items()}
        return cls(data["method"], data["config"], data["class_order"], classifiers,
                   data.get("step_seconds", []), data.get("dataset_note", ""),
                   data.get("classes_seen", []), data.get("environment", {}))

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
            lines.append(f"{self.method}/{name}: average incremental {100 * m['average_incremental_accuracy']:.2f}%, "
                         f"last {100 * m['last_accuracy']:.2f}%, forgetting {100 * m['average_forgetting']:.2f}%, "
                         f"BWT {100 * m['backward_transfer']:+.2f}%")
        return "\n".join(lines)

    def write(self, directory) -> None:
        """results.json and results.csv (one row per step and classifier), atomically."""
        directory = pathlib.Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        atomic_write(directory / "results.json", json.dumps(self.to_dict(), indent=2, allow_nan=False).encode())
        rows = [["method", "classifier", "step", "classes_seen", "acc_seen", "acc_old", "acc_new"]]
        for name, h in self.classifiers.items():
            for t in range(len(h.acc_seen)):
                rows.append([self.method, name, t, self.classes_seen[t], h.acc_seen[t], h.acc_old[t],
                             h.acc_new[t]])
        text = "\n".join(",".join(str(v) for v in row) for row in rows) + "\n"
        atomic_write(directory / "results.csv", text.encode())


def _pct(v: float) -> str:
    return "-" if np.isnan(v) else f"{100 * v:.2f}%"


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
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp)
    plt.close(fig)
    os.replace(tmp, path)
