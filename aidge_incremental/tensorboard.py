"""TensorBoard event files of a run (``--tensorboard``): what ``log.csv`` and
the accuracy matrix hold, written as the run goes, through tensorboardX (the
``tensorboard`` extra), imported only when a run asks for it.

Every value is logged against one axis, the number of epochs trained so far
over the whole run, so that a resumed run can drop what the interrupted one
had logged past its last checkpoint (TensorBoard's ``purge_step``):

- ``loss/total`` and ``loss/<term>`` (each loss term by name), ``lr``,
  ``epoch_seconds``: one point per epoch;
- ``accuracy/<classifier>/{seen,old,new,top5,task_aware}`` and
  ``matrix/<classifier>/step_<j>`` (the row of the accuracy matrix): one point
  per step, at the epoch count the step ended on;
- ``accuracy_matrix``: the heatmap of ``matrix.png``, at the end.
"""
from __future__ import annotations

import math
import pathlib
from typing import Optional

from .evaluation import RunResult, matrix_figure
from .options import ConfigError

__all__ = ["TENSORBOARD_DIR", "TensorBoardLog", "require_tensorboard"]

TENSORBOARD_DIR = "tensorboard"  #: under the run's output directory
INSTALL = 'pip install tensorboardX (the extra: pip install "aidge_incremental[tensorboard]")'


def require_tensorboard():
    """tensorboardX's SummaryWriter, or a ConfigError saying how to install it."""
    try:
        from tensorboardX import SummaryWriter
    except ImportError as e:
        raise ConfigError(f"tensorboard: the events are written with tensorboardX, which cannot be imported "
                          f"({e}): {INSTALL}") from None
    return SummaryWriter


class TensorBoardLog:
    """Events of one run in ``output_dir/tensorboard``. A new run removes the
    event files an earlier one left there; a resumed run appends a new file and
    has TensorBoard discard the old points past ``first_step``."""

    def __init__(self, output_dir, first_step: int = 0, resuming: bool = False):
        writer = require_tensorboard()
        folder = pathlib.Path(output_dir) / TENSORBOARD_DIR
        if not resuming and folder.is_dir():
            for old in folder.glob("events.out.tfevents.*"):
                old.unlink()
        self.writer = writer(str(folder), purge_step=first_step + 1 if resuming else None)
        self.folder = folder

    def epoch(self, row: dict, global_step: int) -> None:
        """One row of log.csv."""
        skip = ("step", "epoch", "lr", "seconds", "samples")
        for name, value in row.items():
            if name not in skip:
                self.writer.add_scalar("loss/total" if name == "loss" else f"loss/{name}", value, global_step)
        self.writer.add_scalar("lr", row["lr"], global_step)
        self.writer.add_scalar("epoch_seconds", row["seconds"], global_step)

    def step(self, result: RunResult, global_step: int) -> None:
        """The accuracies of the step just recorded."""
        for name, h in result.classifiers.items():
            values = {"seen": h.acc_seen[-1], "old": h.acc_old[-1], "new": h.acc_new[-1], "top5": h.acc_top5[-1],
                      "task_aware": h.acc_seen_task_aware[-1]}
            for key, value in values.items():
                if not math.isnan(value):
                    self.writer.add_scalar(f"accuracy/{name}/{key}", value, global_step)
            for j, value in enumerate(h.matrix[-1]):
                self.writer.add_scalar(f"matrix/{name}/step_{j}", value, global_step)
        self.writer.flush()

    def close(self, result: Optional[RunResult] = None) -> None:
        """The accuracy-matrix heatmap (if any step was recorded), then the file is closed."""
        try:
            if result is not None and result.main.acc_seen:
                figure = matrix_figure({n: h.square_matrix() for n, h in result.classifiers.items()},
                                       title=f"{result.method}: accuracy after each step")
                self.writer.add_figure("accuracy_matrix", figure, len(result.epochs), close=True)
        finally:
            self.writer.close()
