"""Sweeps: a grid of runs on this machine or a Ray cluster, restartable, nothing lost.

A grid file names a base configuration, axes to cross and named variants::

    base: {dataset: digits, epochs: 1}       # or a config file: base: examples/configs/digits_icarl.yaml
    grid: {method: [finetune, icarl], seed: [0, 1]}
    variants:                                # optional: rows of their own (ablations)
      icarl-lambda0: {method: icarl, distillation_weight: 0}

A cell is the base, one value of every axis, and (for a variant's cells) the
variant's settings, which replace the axes they set. With variants, the grid's
own cells exist only when it has a ``method`` axis. Every cell is checked
against the options' declarations (those of ``run``) before anything runs, and
is a normal run directory ``OUTPUT/<cell name>`` (named from its settings:
``icarl-seed=1``), so ``aidge-incremental run --resume`` works on it.
``OUTPUT/sweep.json`` maps every cell's name to its row, its protocol and its
full configuration.

Started again, a sweep skips the cells whose directory holds the results of
the same configuration, resumes those holding checkpoints from their last one,
and refuses (naming the cell) a directory holding a run of another
configuration. A failed or killed cell is reported with the end of its log
(``OUTPUT/<cell>/cell.log``) and tried again up to ``retries`` times.

A grid makes at most :data:`MAX_CELLS` cells (10,000: the product of its axes'
lengths, and each variant's, counted before any cell is made), and a sweep runs
at most :data:`MAX_JOBS` cells at once with at most :data:`MAX_THREADS` threads each.

Files of the sweep's folder are opened without following links and refused
unless regular (a ``cell.log`` or ``.sweep-token`` planted as a link to a
victim file, a FIFO or /dev/zero); a Ray worker without the driver's folder
runs its cells in a private folder of its own (mode 0700, the user's).

Executors (:data:`EXECUTORS`): ``local`` (processes on this machine, OpenMP and
BLAS threads per job so that jobs × threads ≤ cores), ``ray`` (a Ray task per
cell; Ray is an optional extra, imported only there) and ``inline`` (this
process, one cell after another: what :func:`compare` uses).
"""
from __future__ import annotations

import collections
import contextlib
import ctypes
import dataclasses
import difflib
import errno
import fcntl
import hashlib
import itertools
import json
import math
import os
import pathlib
import re
import secrets
import signal
import stat
import subprocess
import sys
import tempfile
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

from .checkpoint import CheckpointError, latest_checkpoint, load_checkpoint
from .config import COMMON_OPTIONS, ExperimentConfig, _unknown_message, method_options
from .evaluation import RunResult
from .files import atomic_write, open_regular, read_bounded
from .methods import METHODS
from .options import ConfigError, Option, load_config_file
from .registry import Registry
from .rundir import run_directory
from .table import (CELL_NAME, MANIFEST, MANIFEST_FORMAT, MANIFEST_VERSION, MAX_RESULTS_BYTES, REPEAT_KEYS,
                    TableError, _text, read_results)
from .training import TRAINING_OPTIONS

__all__ = ["Cell", "CellOutcome", "EXECUTORS", "Grid", "InlineExecutor", "LocalExecutor", "MAX_CELLS", "MAX_JOBS",
           "MAX_THREADS", "RayExecutor", "SweepError", "SweepReport", "cell_state", "compare", "run_sweep"]

#: the keys of a grid file
GRID_KEYS = ("base", "grid", "variants")
#: the axis whose values are rows of the table (the others, but the seeds, are its columns)
ROW_AXIS = "method"
#: options a grid cannot set: the sweep gives each cell its run directory
PATH_OPTIONS = ("output_dir", "export_dir")
#: what a cell's process leaves in its run directory besides the run's files
CELL_CONFIG, CELL_LOG = "cell.json", "cell.log"
#: files a Ray task sends back when the driver does not share its filesystem
RETURNED_FILES = ("results.json", "results.csv", "accuracy.png", CELL_LOG)
#: lines of a failed cell's log shown in the report
ERROR_LINES = 12
#: bytes of the end of a failed cell's log read for its report
LOG_TAIL_BYTES = 16 << 10
#: most cells a grid may make (base x axes, and each variant's): a paper's grid has tens to hundreds
MAX_CELLS = 10_000
#: most cells run at once (--jobs) and threads per cell (--threads)
MAX_JOBS = MAX_THREADS = 1024
#: seconds between two writes of sweep.json while cells finish (it is written at the end too)
MANIFEST_EVERY = 2.0
_TOKEN = ".sweep-token"
#: what a sweep's token is: secrets.token_hex(8)
_TOKEN_TEXT = re.compile(r"^[0-9a-f]{16}$")


class SweepError(ValueError):
    """A grid file, a cell or a sweep directory is invalid; the message names the cell and the option."""


# ------------------------------------------------------------------ the grid --

def _declared_options() -> Dict[str, Option]:
    """Every option name a run takes, with any method."""
    out = {o.name: o for o in COMMON_OPTIONS + TRAINING_OPTIONS}
    for cls in METHODS.values():
        for o in cls.declared_options():
            out.setdefault(o.name, o)
    return out


def _identity(config: dict) -> dict:
    """What a run is, without where it writes: its configuration, defaults filled in."""
    values = ExperimentConfig.from_dict(config).to_dict()
    return {k: v for k, v in values.items() if k not in PATH_OPTIONS}


def _digest(values: dict) -> str:
    return hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()[:8]


@dataclasses.dataclass(frozen=True)
class Cell:
    """One run of a sweep: its name (its directory's), its row and protocol in
    the table, what the grid set for it, and its validated configuration."""
    name: str
    row: str
    protocol: Dict[str, Any]
    settings: Dict[str, Any]
    config: ExperimentConfig

    @property
    def directory(self) -> Optional[pathlib.Path]:
        return pathlib.Path(self.config.output_dir) if self.config.output_dir else None

    def describe(self) -> str:
        return ", ".join(f"{k}={_text(v)}" for k, v in self.settings.items())


@dataclasses.dataclass
class Grid:
    """A base configuration, axes to cross and named variants (see the module's docstring)."""
    base: Dict[str, Any]
    axes: Dict[str, list]
    variants: Dict[str, Dict[str, Any]] = dataclasses.field(default_factory=dict)
    source: str = ""  #: the grid file, if any

    def __post_init__(self):
        self._check(self._where(), _declared_options())

    def _where(self) -> str:
        return f"grid file {self.source}" if self.source else "sweep"

    @classmethod
    def from_file(cls, path) -> "Grid":
        """A YAML or JSON grid file (read bounded, as configuration files are);
        a ``base`` that names a file is found beside the grid file, else from
        the current directory."""
        try:
            data = load_config_file(path)
        except ConfigError as e:
            raise SweepError(str(e).replace("config file", "grid file", 1)) from None
        return cls.from_dict(data, source=str(path), folder=pathlib.Path(path).parent)

    @classmethod
    def from_dict(cls, data: dict, source: str = "", folder=None) -> "Grid":
        where = f"grid file {source}" if source else "sweep"
        if not isinstance(data, dict):
            raise SweepError(f"{where} must be a mapping with {', '.join(GRID_KEYS)}")
        known = _declared_options()
        for key in data:
            if key not in GRID_KEYS:
                close = difflib.get_close_matches(str(key), GRID_KEYS, n=1)
                hint = (f" (did you mean {close[0]!r}?)" if close else
                        f" ({key!r} is an option: put it under base:)" if key in known else "")
                raise SweepError(f"{where}: unknown key {key!r}{hint}; a grid file has {', '.join(GRID_KEYS)}")
        base = data.get("base") or {}
        if isinstance(base, str):
            base = {"config": base}
        if not isinstance(base, dict):
            raise SweepError(f"{where}: base must be a mapping of options or the path of a config file, "
                             f"got {base!r}")
        base = _option_names(base, f"{where}: base")
        if "config" in base:
            base = {**_load_base(base.pop("config"), folder, where), **base}
        axes = data.get("grid") or {}
        if not isinstance(axes, dict):
            raise SweepError(f"{where}: grid must be a mapping of options to lists of values, got {axes!r}")
        axes = _option_names(axes, f"{where}: grid")
        variants = data.get("variants") or {}
        if not isinstance(variants, dict):
            raise SweepError(f"{where}: variants must be a mapping of names to settings, got {variants!r}")
        checked = {}
        for name, settings in variants.items():
            if not isinstance(name, str) or not CELL_NAME.match(name) or len(name) > 64:
                raise SweepError(f"{where}: variant name {name!r} must be 1-64 letters, digits and ._+=- "
                                 "(it names the variant's run directories)")
            settings = settings or {}
            if not isinstance(settings, dict):
                raise SweepError(f"{where}: variant {name} must be a mapping of options, got {settings!r}")
            checked[name] = _option_names(settings, f"{where}: variant {name}")
        return cls(base, axes, checked, source)

    def _check(self, where, known) -> None:
        for part, values in (("base", self.base), ("grid", self.axes), ("variants", self.variants)):
            if not isinstance(values, dict):
                raise SweepError(f"{where}: {part} must be a mapping, got {values!r}")
        for part, names in (("base", self.base), ("grid", self.axes),
                            *((f"variant {v}", s) for v, s in self.variants.items())):
            for name in names:
                if name in PATH_OPTIONS:
                    raise SweepError(f"{where}: {part} sets {name}; a sweep gives every cell its own run "
                                     "directory (--output-dir) and exports none (export a cell's checkpoint "
                                     "with aidge-incremental export)")
                if name not in known:
                    close = difflib.get_close_matches(name, list(known), n=1)
                    raise SweepError(f"{where}: {part}: unknown option {name!r}"
                                     + (f" (did you mean {close[0]!r}?)" if close else ""))
        for name, values in self.axes.items():
            if not isinstance(values, list) or not values:
                raise SweepError(f"{where}: grid axis {name!r} must be a non-empty list of values, got {values!r}")
        count = self.count()
        if count > MAX_CELLS:
            sizes = " x ".join(str(len(v)) for v in self.axes.values()) or "1"
            raise SweepError(f"{where} makes {count} cells (axes of {sizes} values"
                             + (f", {len(self.variants)} variant(s)" if self.variants else "")
                             + f"), more than the {MAX_CELLS} a sweep may have: split it into several grid files "
                               "(each with its own --output-dir) or remove values")
        for name, values in self.axes.items():
            if known[name].sequence and not all(isinstance(v, list) for v in values):
                raise SweepError(f"{where}: grid axis {name!r} takes lists ({name} is a list option): write "
                                 f"{name}: [{json.dumps(known[name].default or [1])}, ...]")
            counts = collections.Counter(json.dumps(v, sort_keys=True) for v in values)
            twice = sorted(t for t, n in counts.items() if n > 1)
            if twice:
                raise SweepError(f"{where}: grid axis {name!r} lists {', '.join(twice)} more than once")

    def count(self) -> int:
        """How many cells the grid makes, counted without making them: the
        product of the axes' lengths (when the grid's own cells exist), and for
        each variant the product of the lengths of the axes it does not set."""
        total = 0
        if ROW_AXIS in self.axes or not self.variants:
            total += math.prod(len(v) for v in self.axes.values())
        for fixed in self.variants.values():
            total += math.prod(len(v) for k, v in self.axes.items() if k not in fixed)
        return total

    def cells(self, output_dir=None) -> List[Cell]:
        """Every cell, validated; the first invalid one raises :class:`SweepError`
        naming the cell and the option (and how many others are invalid)."""
        where = self._where()
        output_dir = pathlib.Path(output_dir).absolute() if output_dir is not None else None
        plans = []   # (row, settings named in the cell's name, settings)
        if ROW_AXIS in self.axes or not self.variants:
            for combo in itertools.product(*self.axes.values()):
                settings = dict(zip(self.axes, combo))
                row = settings.get(ROW_AXIS, self.base.get(ROW_AXIS, COMMON_OPTIONS[0].default))
                plans.append((str(row), {k: v for k, v in settings.items() if k != ROW_AXIS}, settings))
        for name, fixed in self.variants.items():
            crossed = {k: v for k, v in self.axes.items() if k not in fixed}
            for combo in itertools.product(*crossed.values()):
                named = dict(zip(crossed, combo))
                plans.append((name, named, {"variant": name, **named, **fixed}))
        cells, errors, taken = [], [], set()
        for row, named, settings in plans:
            name = _cell_name(row, named)
            try:
                config, used = self._config(settings, output_dir, name)
            except (ConfigError, SweepError) as e:
                errors.append(f"{where}: cell {name} ({', '.join(f'{k}={_text(v)}' for k, v in settings.items())}):"
                              f" {e}")
                continue
            taken |= used
            protocol = {k: settings[k] for k in self.axes if k != ROW_AXIS and k not in REPEAT_KEYS}
            cells.append(Cell(name, row, protocol, settings, config))
        if errors:
            more = f" (and {len(errors) - 1} other invalid cell(s))" if len(errors) > 1 else ""
            raise SweepError(errors[0] + more)
        unused = sorted(set(self.base) - taken - {ROW_AXIS})
        if unused:
            methods = sorted({c.config.method for c in cells})
            raise SweepError(f"{where}: options {unused} apply to none of the compared methods "
                             f"({', '.join(methods)}): " + _unknown_message(
                                 unused, methods[0], method_options(methods[0])).split(". Options")[0])
        return _unique_names(cells, output_dir, where)

    def _config(self, settings: dict, output_dir, name) -> Tuple[ExperimentConfig, set]:
        """A cell's configuration: the base (its method's options only), then the
        axes, then the variant; strict about what the grid sets for the cell."""
        settings = {k: v for k, v in settings.items() if k != "variant"}
        method = COMMON_OPTIONS[0].check(settings.get(ROW_AXIS, self.base.get(ROW_AXIS, COMMON_OPTIONS[0].default)))
        takes = set(method_options(method))
        values = {k: v for k, v in self.base.items() if k in takes}
        values.update(settings)
        values["method"] = method
        if values.get("data_dir"):  # a cell may run elsewhere: the data is where it was when the sweep started
            values["data_dir"] = os.path.abspath(str(values["data_dir"]))
        if output_dir is not None:
            values["output_dir"] = str(output_dir / name)
        return ExperimentConfig.from_dict(values), set(values) & set(self.base)

    def to_dict(self) -> dict:
        return {"source": self.source, "base": self.base, "grid": self.axes, "variants": self.variants}


def _option_names(values: dict, where: str) -> dict:
    out = {}
    for key, value in values.items():
        if not isinstance(key, str):
            raise SweepError(f"{where}: option names must be strings, got {key!r}")
        out[key.replace("-", "_")] = value
    return out


def _load_base(path, folder, where) -> dict:
    if not isinstance(path, str) or not path:
        raise SweepError(f"{where}: base config must be the path of a config file, got {path!r}")
    candidates = [pathlib.Path(path)] if pathlib.Path(path).is_absolute() else \
        list(dict.fromkeys(p for p in ((pathlib.Path(folder) / path) if folder else None, pathlib.Path(path)) if p))
    for candidate in candidates:
        if candidate.is_file():
            values = load_config_file(candidate)
            return values
    raise SweepError(f"{where}: base config {path} not found (looked at "
                     f"{', '.join(str(c) for c in candidates)})")


def _cell_name(row: str, named: dict) -> str:
    """``icarl-memory=2000-seed=1``: the row, then the other axes' values; kept
    to one readable path component (characters outside [A-Za-z0-9._+=,-] become _)."""
    text = "-".join([row] + [f"{k}={_text(v)}" for k, v in named.items()])
    text = re.sub(r"[^A-Za-z0-9._+=,-]", "_", text)
    if not text[0].isalnum():
        text = "c" + text
    if len(text) > 120:
        text = text[:110] + "-" + _digest({"row": row, **named})
    return text


def _unique_names(cells: List[Cell], output_dir, where) -> List[Cell]:
    """Two cells of one configuration are an error; two names made equal by
    shortening get the digest of their configuration appended."""
    seen = {}
    for cell in cells:
        key = json.dumps(_identity(cell.config.to_dict()), sort_keys=True)
        if key in seen:
            raise SweepError(f"{where}: cells {seen[key]} and {cell.name} have the same configuration; "
                             "remove one (a variant that repeats a grid row?)")
        seen[key] = cell.name
    counts = collections.Counter(c.name for c in cells)
    out = []
    for cell in cells:
        if counts[cell.name] > 1:
            name = f"{cell.name}-{_digest(_identity(cell.config.to_dict()))}"
            config = cell.config.replace(output_dir=str(output_dir / name)) if output_dir is not None else cell.config
            cell = dataclasses.replace(cell, name=name, config=config)
        out.append(cell)
    return out


# ------------------------------------------------------------------ a cell's state --

def cell_state(directory, config: dict, name: str, overwrite: bool = False) -> Tuple[str, str]:
    """``("done" | "resume" | "new", detail)`` of a cell's run directory.

    Done: it holds results.json of the same configuration with every step.
    Resume: checkpoints of the same configuration, no results of every step. New: nothing of a run. A run of
    another configuration raises :class:`SweepError` naming the cell, unless
    ``overwrite`` (every cell then runs again from its beginning)."""
    directory = pathlib.Path(directory)
    want = _identity(config)
    results = directory / "results.json"
    if results.exists():
        if overwrite:
            return "new", "replacing its results (--overwrite)"
        try:
            recorded = read_results(results)
        except TableError as e:
            raise SweepError(f"cell {name}: {e}; remove it, or --overwrite") from None
        _check_same(name, directory, want, recorded.config)
        if recorded.complete:
            return "done", ""
    found = latest_checkpoint(directory) if directory.is_dir() else None
    if found is None:
        return "new", ""
    if overwrite:
        return "new", "replacing its checkpoints (--overwrite)"
    try:
        checkpoint = load_checkpoint(found)
    except CheckpointError as e:
        raise SweepError(f"cell {name}: {e}; remove {found} to resume from the checkpoint before it, or "
                         "--overwrite to run the cell again") from None
    _check_same(name, directory, want, checkpoint.config)
    return "resume", f"after step {checkpoint.step}"


def _check_same(name, directory, want: dict, recorded) -> None:
    try:
        got = _identity(recorded) if isinstance(recorded, dict) else None
    except ConfigError as e:
        got, why = None, str(e)
    else:
        why = "not a configuration" if got is None else ""
    if got == want:
        return
    if got is not None:
        keys = sorted(k for k in set(want) | set(got) if want.get(k) != got.get(k))
        why = "; ".join(f"{k}: {got.get(k)!r} there, {want.get(k)!r} in the grid" for k in keys[:6])
    raise SweepError(f"cell {name}: {directory} holds a run of another configuration ({why}); remove it, "
                     "give another --output-dir, or --overwrite to replace it")


# ------------------------------------------------------------------ executors --

@dataclasses.dataclass
class CellOutcome:
    """How one attempt at a cell ended."""
    name: str
    attempt: int
    ok: bool
    returncode: Optional[int] = None
    error: str = ""                    #: the end of the cell's log, or the exception
    wall_seconds: float = 0.0
    cpu_seconds: Optional[float] = None
    result: Optional[RunResult] = dataclasses.field(default=None, repr=False)


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def _thread_env(threads: int) -> dict:
    """One job's thread settings: OpenMP (our kernels, Aidge's) and the BLAS libraries'."""
    return {k: str(threads) for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}


_PR_SET_PDEATHSIG = 1


def _die_with_parent_hook():
    """A preexec function making a cell's process die with the sweep (Linux):
    a sweep killed with SIGKILL leaves no cell running unseen."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def hook():
        prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:  # the sweep died before prctl
            os._exit(1)
    return hook


@dataclasses.dataclass(eq=False)
class _Process:
    spec: dict
    popen: subprocess.Popen
    log_path: pathlib.Path
    log_offset: int
    started: float


def _spawn(spec: dict, threads: int) -> _Process:
    """Start a cell as ``python -m aidge_incremental.cli run``, its output appended to cell.log."""
    directory = pathlib.Path(spec["directory"])
    directory.mkdir(parents=True, exist_ok=True)
    if spec["state"] == "resume":
        args = ["run", "--resume", str(directory)]
    else:
        try:
            atomic_write(directory / CELL_CONFIG, json.dumps(spec["config"], indent=1).encode())
        except OSError as e:
            raise SweepError(f"cannot write the cell's configuration {directory / CELL_CONFIG}: "
                             f"{e.strerror or e}") from None
        args = ["run", "--config", str(directory / CELL_CONFIG)] + (["--overwrite"] if spec["overwrite"] else [])
    command = [sys.executable, "-m", "aidge_incremental.cli", *args, "--no-progress"]
    env = {**os.environ, **_thread_env(threads)}
    # the cell runs the code this sweep runs
    package_root = str(pathlib.Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join([package_root] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    log_path = directory / CELL_LOG
    with _open_log(log_path) as log:
        offset = log.tell()
        log.write(f"--- attempt {spec['attempt']} of {spec['attempts']}, {time.strftime('%Y-%m-%d %H:%M:%S')}, "
                  f"{threads} thread(s): {' '.join(command)}\n".encode())
        log.flush()
        popen = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                 env=env, start_new_session=True, preexec_fn=_die_with_parent_hook())
    return _Process(spec, popen, log_path, offset, time.perf_counter())


def _reap(process: _Process, block: bool = False) -> Optional[CellOutcome]:
    """The outcome of a finished cell process (None while it runs); its CPU time from wait4."""
    try:
        pid, status, usage = os.wait4(process.popen.pid, 0 if block else os.WNOHANG)
    except ChildProcessError:  # reaped already (an interrupt between wait4 and the line below)
        process.popen.returncode = process.popen.returncode if process.popen.returncode is not None else -1
        return CellOutcome(process.spec["name"], process.spec["attempt"], False, -1, "its exit status was lost",
                           time.perf_counter() - process.started)
    if pid == 0:
        return None
    code = os.waitstatus_to_exitcode(status)
    process.popen.returncode = code  # reaped here: Popen must not wait for it again
    spec = process.spec
    ok = code == 0 and (pathlib.Path(spec["directory"]) / "results.json").is_file()
    error = ""
    if not ok:
        tail = _log_tail(process.log_path, process.log_offset)
        why = (f"killed by {signal.Signals(-code).name}" if code < 0 else f"exit status {code}")
        error = why + ("\n" + tail if tail else "")
    return CellOutcome(spec["name"], spec["attempt"], ok, code, error, time.perf_counter() - process.started,
                       usage.ru_utime + usage.ru_stime)


def _not_a_link(path: pathlib.Path, what: str) -> pathlib.Path:
    """``path``, refused (:class:`SweepError` naming it) if it is a symbolic link;
    the readers of :mod:`.files` then open it with ``O_NOFOLLOW`` (a link swapped
    in after this check is refused there too)."""
    if os.path.islink(path):
        raise SweepError(f"{what} {path} is a symbolic link: not followed")
    return path


def _open_log(path: pathlib.Path):
    """A cell's log, opened to append (created if need be) without following a
    link and refused unless a regular file: a ``cell.log`` planted as a link to
    a victim file, a FIFO (opened without blocking) or a device raises
    :class:`SweepError` naming it."""
    flags = (os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0)
             | getattr(os, "O_CLOEXEC", 0))
    fix = "remove it (a cell's log is a file of its own)"
    try:
        fd = os.open(path, flags, 0o666)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise SweepError(f"cell log {path} is a symbolic link: not written through; {fix}") from None
        if e.errno == errno.ENXIO:  # a FIFO nobody reads
            raise SweepError(f"cell log {path} is not a regular file (a FIFO): not written; {fix}") from None
        raise SweepError(f"cannot write cell log {path}: {e.strerror}") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            kind = next((n for test, n in ((stat.S_ISFIFO, "FIFO"), (stat.S_ISCHR, "character device"),
                                           (stat.S_ISBLK, "block device"), (stat.S_ISSOCK, "socket"),
                                           (stat.S_ISDIR, "directory")) if test(mode)), "special file")
            raise SweepError(f"cell log {path} is not a regular file (a {kind}): not written; {fix}")
        fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_NONBLOCK)
        os.lseek(fd, 0, os.SEEK_END)
        return os.fdopen(fd, "ab")
    except BaseException:
        os.close(fd)
        raise


def _log_tail(path: pathlib.Path, offset: int, lines: int = ERROR_LINES) -> str:
    """The last ``lines`` lines of what an attempt wrote to its log (from
    ``offset``), read from at most its last :data:`LOG_TAIL_BYTES` bytes; a log
    that is no longer a regular file of its own is not read (the reason is told)."""
    try:
        fd = open_regular(_not_a_link(path, "cell log"), "cell log", SweepError, follow_links=False)
    except SweepError as e:
        return f"(its log is not read: {e})"
    try:
        size = os.fstat(fd).st_size
        os.lseek(fd, max(offset, size - LOG_TAIL_BYTES), os.SEEK_SET)
        chunks, left = [], LOG_TAIL_BYTES
        while left > 0:
            block = os.read(fd, left)
            if not block:
                break
            chunks.append(block)
            left -= len(block)
    except OSError:
        return ""
    finally:
        os.close(fd)
    text = b"".join(chunks).decode("utf-8", errors="replace")
    kept = [line for line in text.splitlines()[1:] if line.strip()]  # the attempt's header (or a cut line) left out
    return "\n".join(kept[-lines:])


def _stop(processes: Sequence[_Process], grace: float = 5.0) -> None:
    """SIGTERM to every cell's process group, SIGKILL after ``grace`` seconds."""
    for p in processes:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(p.popen.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for p in processes:
        while p.popen.returncode is None:
            if _reap(p) is not None:
                break
            if time.monotonic() > deadline:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(p.popen.pid, signal.SIGKILL)
                _reap(p, block=True)
                break
            time.sleep(0.05)


class LocalExecutor:
    """Cells as processes on this machine, ``jobs`` at a time, each with
    ``threads`` OpenMP/BLAS threads (default: cores // jobs, at least 1)."""
    name = "local"

    def __init__(self, jobs: Optional[int] = None, threads: Optional[int] = None, **_):
        self.slots = jobs or 1
        self.threads = threads or max(1, _cores() // self.slots)

    def describe(self) -> str:
        return f"local, {self.slots} job(s) × {self.threads} thread(s), {_cores()} core(s)"

    def start(self, spec: dict):
        return _spawn(spec, self.threads)

    def wait(self, handles, timeout: float):
        deadline = time.monotonic() + timeout
        while True:
            done = [(h, o) for h in handles if (o := _reap(h)) is not None]
            if done or time.monotonic() >= deadline:
                return done
            time.sleep(0.05)

    def stop(self, handles) -> None:
        _stop(list(handles))

    def close(self) -> None:
        pass


@dataclasses.dataclass(eq=False)
class _Done:
    outcome: CellOutcome


class InlineExecutor:
    """Cells in this process, one after another (no isolation: a crash ends the
    sweep). Each dataset is loaded once. What :func:`compare` uses."""
    name = "inline"
    slots = 1

    def __init__(self, progress: bool = False, log=None, **_):
        self.progress, self.log = progress, log
        self._datasets = {}

    def describe(self) -> str:
        return "inline, in this process"

    def start(self, spec: dict):
        from .datasets import load_dataset
        from .experiment import run_experiment
        started, cpu = time.perf_counter(), time.process_time()
        try:
            config = ExperimentConfig.from_dict(spec["config"])
            key = (config.dataset, config.data_dir, config.normalize)
            if key not in self._datasets:
                self._datasets[key] = load_dataset(config.dataset, config.data_dir, normalize=config.normalize,
                                                  download=config.download, log=self.log)
            if spec["state"] == "resume":
                result = run_experiment(config, self._datasets[key], progress=self.progress, log=self.log,
                                        resume=spec["directory"])
            else:
                result = run_experiment(config, self._datasets[key], progress=self.progress, log=self.log,
                                        overwrite=spec["overwrite"])
            outcome = CellOutcome(spec["name"], spec["attempt"], True, result=result)
        except Exception as e:  # reported and retried like a failed process
            outcome = CellOutcome(spec["name"], spec["attempt"], False, error=f"{type(e).__name__}: {e}")
        outcome.wall_seconds, outcome.cpu_seconds = time.perf_counter() - started, time.process_time() - cpu
        return _Done(outcome)

    def wait(self, handles, timeout: float):
        return [(h, h.outcome) for h in handles]

    def stop(self, handles) -> None:
        pass

    def close(self) -> None:
        pass


def _private_folder(path: pathlib.Path) -> pathlib.Path:
    """``path``, a folder only this user can enter: made with mode 0700, or, if
    it exists, checked to be a folder (not a link) of this user's that no one
    else may read or write; :class:`SweepError` naming it otherwise."""
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    except OSError as e:
        raise SweepError(f"cannot make the sweep's scratch folder {path}: {e.strerror}") from None
    info = os.lstat(path)
    if not stat.S_ISDIR(info.st_mode):
        raise SweepError(f"the sweep's scratch folder {path} is not a folder (a link or a file): not used; "
                         "remove it")
    if info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise SweepError(f"the sweep's scratch folder {path} belongs to user {info.st_uid} with mode "
                         f"{stat.S_IMODE(info.st_mode):o}: it must be this user's ({os.getuid()}) with mode 700 "
                         "(others could plant links in it); remove it, or set TMPDIR to a folder of your own")
    return path


def _scratch_directory(token, name) -> pathlib.Path:
    """Where a worker without the driver's folder runs cell ``name`` of sweep
    ``token``: ``<temp>/aidge-incremental-sweeps-<uid>/<token>/<name>``, every
    folder private (mode 0700), kept between tasks (a cell tried again on that
    node resumes there)."""
    if not isinstance(token, str) or not _TOKEN_TEXT.match(token):
        raise SweepError(f"sweep token {token!r} is not a sweep's token (16 hex digits)")
    if not isinstance(name, str) or not CELL_NAME.match(name):
        raise SweepError(f"cell name {name!r} is not one path component")
    root = _private_folder(pathlib.Path(tempfile.gettempdir()) / f"aidge-incremental-sweeps-{os.getuid()}")
    return _private_folder(_private_folder(root / token) / name)


def _ray_cell(spec: dict) -> dict:
    """A cell run by a Ray worker: the same process as a local job. Where the
    worker does not see the driver's sweep folder (no shared filesystem), the
    cell runs in a private folder of the worker's temporary directory (see
    :func:`_scratch_directory`), and its result files come back with the task's value."""
    def failed(error: str) -> dict:
        return {"outcome": dataclasses.asdict(CellOutcome(spec["name"], spec["attempt"], False, error=error)),
                "files": {}}

    directory = pathlib.Path(spec["directory"])
    shared = _read_token(directory.parent) == spec["token"]
    if not shared:
        try:
            directory = _scratch_directory(spec["token"], spec["name"])
        except SweepError as e:
            return failed(str(e))
        spec = {**spec, "directory": str(directory), "config": {**spec["config"], "output_dir": str(directory)}}
        try:
            spec["state"] = cell_state(directory, spec["config"], spec["name"], spec["overwrite"])[0]
        except SweepError as e:
            return failed(str(e))
    if spec["state"] == "done":
        outcome = CellOutcome(spec["name"], spec["attempt"], True)
    else:
        try:
            process = _spawn(spec, spec["threads"])
        except SweepError as e:
            return failed(str(e))
        outcome = _reap(process, block=True)
    files = {}
    if not shared:
        for name in RETURNED_FILES:  # the cell's own files: no link followed, nothing but a regular file
            if os.path.lexists(directory / name):
                with contextlib.suppress(SweepError):
                    files[name] = read_bounded(_not_a_link(directory / name, "cell file"), "cell file",
                                               limit=MAX_RESULTS_BYTES, error=SweepError, follow_links=False)
    return {"outcome": dataclasses.asdict(outcome), "files": files, "node": os.uname().nodename}


def _read_token(folder: pathlib.Path, strict: bool = False) -> Optional[str]:
    """The sweep's token in ``folder`` (16 hex digits), None where there is none.

    Read bounded, refusing a link, FIFO or device: ``strict`` (the driver, in
    its own folder) raises :class:`SweepError` naming the file; otherwise (a
    Ray worker looking for the driver's folder) such a file is no token."""
    path = pathlib.Path(folder) / _TOKEN
    try:
        os.lstat(path)
    except OSError:
        return None
    try:
        raw = read_bounded(_not_a_link(path, "sweep token"), "sweep token", limit=64, error=SweepError,
                           follow_links=False)
        text = raw.decode("ascii").strip()
        if not _TOKEN_TEXT.match(text):
            raise SweepError(f"sweep token {path} holds {raw[:40]!r}, not a sweep's token (16 hex digits)")
    except (SweepError, UnicodeDecodeError) as e:
        if not strict:
            return None
        why = str(e) if isinstance(e, SweepError) else f"sweep token {path} is not ASCII text"
        raise SweepError(f"{why}; remove {path} (the sweep writes a new one)") from None
    return text


class RayExecutor:
    """A Ray task per cell with ``num_cpus = threads`` (default 1): on the
    cluster at ``address``, on the one this process already joined, else on a
    local Ray started here (``jobs × threads`` CPUs, or all cores). ``jobs``
    bounds the tasks in flight (default: all cells, Ray schedules them)."""
    name = "ray"

    def __init__(self, jobs: Optional[int] = None, threads: Optional[int] = None, address: Optional[str] = None,
                 **_):
        try:
            import ray
        except ImportError:
            raise SweepError("the ray executor needs Ray: pip install 'aidge_incremental[ray]' "
                             "(or pip install 'ray[default]')") from None
        self.ray = ray
        self.threads = threads or 1
        self.slots = jobs or 1 << 30
        self._started = False
        self._specs = {}
        if not ray.is_initialized():
            kwargs = {"address": address} if address else \
                {"num_cpus": jobs * self.threads if jobs else None, "include_dashboard": False}
            ray.init(**kwargs, logging_level="warning", log_to_driver=False)
            self._started = True
        cpus = ray.cluster_resources().get("CPU", 0)
        if address is None and self.threads > cpus:  # Ray would wait for such a node for ever
            self.close()
            raise SweepError(f"--threads {self.threads}: a cell would need {self.threads} CPUs and this Ray "
                             f"cluster has {cpus:g}")
        self._remote = ray.remote(_ray_cell)

    def describe(self) -> str:
        cpus = self.ray.cluster_resources().get("CPU", 0)
        jobs = "all cells" if self.slots >= 1 << 30 else f"{self.slots} job(s)"
        return f"ray, {jobs} × {self.threads} CPU(s) per cell, cluster of {cpus:g} CPU(s)"

    def start(self, spec: dict):
        spec = {**spec, "threads": self.threads}
        ref = self._remote.options(num_cpus=self.threads, max_retries=0, name=f"cell {spec['name']}").remote(spec)
        self._specs[ref] = spec
        return ref

    def wait(self, handles, timeout: float):
        ready, _ = self.ray.wait(list(handles), num_returns=1, timeout=timeout)
        done = []
        for ref in ready:
            spec = self._specs.pop(ref)
            try:
                value = self.ray.get(ref)
            except Exception as e:  # the worker or its node died: ray.exceptions.RayError
                done.append((ref, CellOutcome(spec["name"], spec["attempt"], False,
                                              error=f"{type(e).__name__}: {str(e)[-2000:]}")))
                continue
            outcome = CellOutcome(**value["outcome"])
            if value["files"]:  # no shared filesystem: the results come back with the task
                directory = pathlib.Path(spec["directory"])
                directory.mkdir(parents=True, exist_ok=True)
                for name, data in value["files"].items():
                    if name in RETURNED_FILES and isinstance(data, bytes):
                        atomic_write(directory / name, data)
            done.append((ref, outcome))
        return done

    def stop(self, handles) -> None:
        for ref in handles:
            with contextlib.suppress(Exception):
                self.ray.cancel(ref, force=True)

    def close(self) -> None:
        if self._started:
            self.ray.shutdown()


#: how a sweep runs its cells, by name
EXECUTORS = Registry("executor")
EXECUTORS.register("local", LocalExecutor)
EXECUTORS.register("ray", RayExecutor)
EXECUTORS.register("inline", InlineExecutor)


# ------------------------------------------------------------------ the sweep --

@dataclasses.dataclass
class SweepReport:
    """What a sweep found and did."""
    cells: List[Cell]
    states: Dict[str, Tuple[str, str]]                 #: name -> (done | resume | new, detail) before it ran
    outcomes: Dict[str, List[CellOutcome]] = dataclasses.field(default_factory=dict)  #: every attempt
    wall_seconds: float = 0.0
    cpu_seconds: float = 0.0                           #: the driver's own CPU time
    interrupted: bool = False

    @property
    def failed(self) -> List[str]:
        return [n for n, attempts in self.outcomes.items() if attempts and not attempts[-1].ok]

    @property
    def ran(self) -> List[str]:
        return [n for n, attempts in self.outcomes.items() if attempts and attempts[-1].ok]

    def failure_text(self) -> str:
        lines = []
        for name in self.failed:
            last = self.outcomes[name][-1]
            lines.append(f"cell {name} failed after {len(self.outcomes[name])} attempt(s): {_short(last.error)}")
        return "\n".join(lines)

    def summary(self) -> str:
        done = sum(1 for s, _ in self.states.values() if s == "done")
        text = (f"{len(self.cells)} cell(s): {done} already done, {len(self.ran)} ran, {len(self.failed)} failed"
                + (", interrupted" if self.interrupted else ""))
        cell_wall = sum(o.wall_seconds for attempts in self.outcomes.values() for o in attempts)
        if self.outcomes:
            cell_cpu = sum(o.cpu_seconds or 0.0 for attempts in self.outcomes.values() for o in attempts)
            text += (f"; sweep {self.wall_seconds:.1f} s wall ({self.cpu_seconds:.1f} s CPU in the driver), "
                     f"cells {cell_wall:.1f} s wall and {cell_cpu:.1f} s CPU in all")
        return text

    def results(self) -> Dict[str, RunResult]:
        """Every finished cell's results: the run's own (inline), else read from its directory."""
        out = {}
        for cell in self.cells:
            attempts = self.outcomes.get(cell.name)
            if attempts and attempts[-1].ok and attempts[-1].result is not None:
                out[cell.name] = attempts[-1].result
            elif cell.directory is not None and (cell.directory / "results.json").is_file():
                out[cell.name] = read_results(cell.directory)
        return out


def run_sweep(grid: Grid, output_dir=None, executor: str = "local", jobs: Optional[int] = None,
              threads: Optional[int] = None, retries: int = 1, address: Optional[str] = None,
              overwrite: bool = False, dry_run: bool = False, log=None, progress: bool = False) -> SweepReport:
    """Run every cell of ``grid`` not yet done, in ``output_dir/<cell name>``.

    Every cell is validated and every existing cell directory checked before
    anything runs. A failed attempt is reported (``log``) with the end of the
    cell's log and tried again up to ``retries`` times; it resumes from the
    cell's last checkpoint. ``dry_run`` plans only. Ctrl-C (KeyboardInterrupt)
    stops the running cells and is raised again once they are stopped.
    ``output_dir`` None runs cells in memory (inline executor only)."""
    say = log or (lambda *_: None)
    if not isinstance(retries, int) or retries < 0:
        raise SweepError(f"retries must be an integer >= 0, got {retries!r}")
    for name, value, most, what in (("jobs", jobs, MAX_JOBS, "cells run at once"),
                                    ("threads", threads, MAX_THREADS, "threads per cell")):
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
            raise SweepError(f"{name} must be an integer >= 1, got {value!r}")
        if value is not None and value > most:
            raise SweepError(f"--{name} {value}: at most {most} {what}; give a smaller --{name}")
    try:
        executor_class = EXECUTORS[executor]
    except KeyError as e:
        raise SweepError(str(e)) from None
    if output_dir is None and executor != "inline":
        raise SweepError(f"the {executor} executor runs cells in their own run directories: give an output_dir")
    cells = grid.cells(output_dir)
    _check_data(cells, executor, say)
    states = {}
    for cell in cells:
        states[cell.name] = cell_state(cell.directory, cell.config.to_dict(), cell.name, overwrite) \
            if cell.directory is not None else ("new", "")
    report = SweepReport(cells, states)
    if dry_run:
        return report
    output_dir = pathlib.Path(output_dir) if output_dir is not None else None
    with run_directory(output_dir, resuming=True) if output_dir is not None else contextlib.nullcontext():
        if output_dir is not None:
            if _read_token(output_dir, strict=True) is None:
                atomic_write(output_dir / _TOKEN, secrets.token_hex(8).encode())
            _write_manifest(output_dir, grid, cells, report)
        todo = [c for c in cells if states[c.name][0] != "done"]
        started, cpu = time.perf_counter(), time.process_time()
        if todo:
            runner = executor_class(jobs=jobs, threads=threads, address=address, progress=progress, log=log)
            say(f"sweep: {len(cells)} cell(s), {len(cells) - len(todo)} done, {len(todo)} to run "
                f"({runner.describe()})")
            try:
                _drive(runner, todo, report, retries, overwrite, output_dir, grid, say)
            except KeyboardInterrupt:
                report.interrupted = True
                raise
            finally:
                runner.close()
                report.wall_seconds, report.cpu_seconds = time.perf_counter() - started, time.process_time() - cpu
                if output_dir is not None:
                    _write_manifest(output_dir, grid, cells, report)
        else:
            say(f"sweep: all {len(cells)} cell(s) done, nothing to run")
    return report


def _check_data(cells: List[Cell], executor: str, say) -> None:
    """A dataset read from a path needs the path; one missing here is an error
    before anything runs (a note with Ray: the workers may see what this machine does not)."""
    from .datasets import DATASETS
    missing = {}
    for cell in cells:
        config = cell.config
        if DATASETS[config.dataset].needs_path:
            if not config.data_dir:
                raise SweepError(f"cell {cell.name}: dataset {config.dataset} needs a data_dir")
            if not os.path.exists(config.data_dir):
                missing.setdefault(config.data_dir, cell.name)
    for path, name in missing.items():
        if executor != "ray":
            raise SweepError(f"cell {name}: data_dir {path} does not exist")
        say(f"note: data_dir {path} (cell {name}) does not exist here; the Ray workers must see it")


def _drive(runner, todo: List[Cell], report: SweepReport, retries: int, overwrite: bool, output_dir, grid, say):
    """Start cells as slots free up, collect their outcomes, retry failures."""
    pending = collections.deque(todo)
    running: Dict[Any, Cell] = {}
    token = _read_token(output_dir, strict=True) if output_dir is not None else None
    total, finished = len(todo), 0
    written = time.monotonic()
    try:
        while pending or running:
            while pending and len(running) < runner.slots:
                cell = pending.popleft()
                attempts = report.outcomes.setdefault(cell.name, [])
                attempt = len(attempts) + 1
                try:
                    state = report.states[cell.name][0] if attempt == 1 or cell.directory is None else \
                        cell_state(cell.directory, cell.config.to_dict(), cell.name)[0]
                except SweepError as e:
                    attempts.append(CellOutcome(cell.name, attempt, False, error=str(e)))
                    finished += 1
                    say(f"[{finished}/{total}] {cell.name}: failed: {e}")
                    continue
                spec = {"name": cell.name, "directory": str(cell.directory) if cell.directory else None,
                        "config": cell.config.to_dict(), "state": state, "overwrite": overwrite and attempt == 1,
                        "attempt": attempt, "attempts": retries + 1, "token": token}
                try:
                    running[runner.start(spec)] = cell
                except SweepError as e:  # its log is a link or a FIFO...: the cell cannot start, the others run
                    attempts.append(CellOutcome(cell.name, attempt, False, error=str(e)))
                    finished += 1
                    say(f"[{finished}/{total}] {cell.name}: failed: {e}")
            for handle, outcome in runner.wait(list(running), timeout=0.5):
                cell = running.pop(handle)
                attempts = report.outcomes[cell.name]
                attempts.append(outcome)
                if outcome.ok:
                    finished += 1
                    cpu = f", {outcome.cpu_seconds:.1f} s CPU" if outcome.cpu_seconds is not None else ""
                    say(f"[{finished}/{total}] {cell.name}: done in {outcome.wall_seconds:.1f} s{cpu}")
                elif len(attempts) <= retries:
                    say(f"{cell.name}: attempt {len(attempts)} of {retries + 1} failed ({_short(outcome.error)}); "
                        "trying again")
                    pending.appendleft(cell)
                else:
                    finished += 1
                    say(f"[{finished}/{total}] {cell.name}: FAILED after {len(attempts)} attempt(s): "
                        + outcome.error.replace("\n", "\n    ")
                        + (f"\n    (log: {cell.directory / CELL_LOG})" if cell.directory else ""))
                if output_dir is not None and time.monotonic() - written > MANIFEST_EVERY:
                    _write_manifest(output_dir, grid, report.cells, report)  # and once more at the end
                    written = time.monotonic()
    except KeyboardInterrupt:
        if running:
            say(f"sweep: interrupted; stopping {len(running)} running cell(s): "
                + ", ".join(c.name for c in running.values()))
            runner.stop(list(running))
        raise


def _short(error: str) -> str:
    """``exit status 2: <the log's last line>``: a failure in one line."""
    lines = error.splitlines() or ["no message"]
    return lines[0] if len(lines) == 1 else f"{lines[0]}: {lines[-1]}"


def _write_manifest(output_dir: pathlib.Path, grid: Grid, cells: List[Cell], report: SweepReport) -> None:
    status = {}
    for cell in cells:
        attempts = report.outcomes.get(cell.name, [])
        state, detail = report.states[cell.name]
        entry = {"before": state + (f" ({detail})" if detail else "")}
        if attempts:
            last = attempts[-1]
            entry.update(state="done" if last.ok else "failed", attempts=len(attempts),
                         wall_seconds=sum(o.wall_seconds for o in attempts),
                         cpu_seconds=sum(o.cpu_seconds or 0.0 for o in attempts))
            if not last.ok:
                entry["error"] = last.error
        else:
            entry["state"] = "done" if state == "done" else "pending"
        status[cell.name] = entry
    data = {"format": MANIFEST_FORMAT, "version": MANIFEST_VERSION, "grid": grid.to_dict(),
            "cells": [{"name": c.name, "row": c.row, "protocol": c.protocol, "settings": c.settings,
                       "config": c.config.to_dict()} for c in cells],
            "status": status}
    atomic_write(output_dir / MANIFEST, json.dumps(data, indent=1, allow_nan=False).encode())


# ------------------------------------------------------------------ compare --

def compare(methods: Sequence[str], config, progress: bool = False, log=None, overwrite: bool = False,
            jobs: int = 1) -> Dict[str, RunResult]:
    """Several methods on the same scenario and seed: a sweep with one axis,
    ``method``. ``config`` (an ExperimentConfig or a dict of options, e.g. a
    shipped config's) is the base; its ``method`` is ignored, and a method's
    own option applies to the methods that declare it (an option none of them
    declares is an error). With ``output_dir``: a run directory per method,
    ``comparison.png`` and ``comparison.csv``; a method already run there with
    the same settings is read back, not run again. ``jobs`` > 1 runs the
    methods as parallel processes (their ``trained_method`` is then None)."""
    values = config.to_dict() if isinstance(config, ExperimentConfig) else dict(config)
    for name in methods:
        if name not in METHODS:
            raise ConfigError(f"unknown method {name!r}: one of {', '.join(sorted(METHODS))}")
    values.pop("method", None)
    output_dir = values.pop("output_dir", None)
    if values.get("export_dir") is None:
        values.pop("export_dir", None)
    grid = Grid.from_dict({"base": values, "grid": {ROW_AXIS: list(methods)}})
    report = run_sweep(grid, output_dir, executor="inline" if jobs == 1 else "local", jobs=jobs, retries=0,
                       overwrite=overwrite, log=log, progress=progress)
    if report.failed:
        raise SweepError(report.failure_text())
    by_cell = report.results()
    results = {cell.config.method: by_cell[cell.name] for cell in report.cells}
    if output_dir:
        from .evaluation import plot_accuracy
        from .table import ResultTable, collect_runs
        first = report.cells[0].config
        curves = {}
        for name, r in results.items():
            for clf, h in r.classifiers.items():
                curves[name if len(r.classifiers) == 1 else f"{name} ({clf})"] = h.acc_seen
        steps = results[methods[0]].classes_seen
        plot_accuracy(curves, pathlib.Path(output_dir) / "comparison.png",
                      title=f"{first.dataset}, {len(steps)} steps, seed {first.seed}",
                      classes_per_step=[b - a for a, b in zip([0] + steps[:-1], steps)] or None)
        atomic_write(pathlib.Path(output_dir) / "comparison.csv",
                     ResultTable(collect_runs([output_dir])).csv().encode())
    return results
