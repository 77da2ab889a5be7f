"""Paper tables from run directories: a row per method or variant, a column per
protocol, mean ± sample standard deviation over seeds.

What makes a row, a column and a repetition:

- **repetitions** — runs that differ only by ``seed`` (and ``class_order``) —
  are averaged: mean ± sd with ddof = 1 (the sample standard deviation);
- in a **sweep** (a folder holding ``sweep.json``), a row is a variant, or a
  value of the ``method`` axis; a column is one combination of the values of
  the other axes (``seed`` and ``class_order`` excepted). The manifest says it
  for every cell, so nothing is guessed;
- for **run directories outside a sweep**, a column is one combination of the
  scenario settings that differ between the runs (dataset, model, hidden,
  initial, increment), and a row is the method, with every other setting
  that differs between that method's runs (``icarl memory=2000``).

A method with two classifiers (iCaRL's NME and its head) has a row for each.
The metrics are recomputed from each run's accuracy matrix (never read from
the file's summary): average incremental accuracy (Rebuffi et al. 2017),
accuracy after the last step, average forgetting (Chaudhry et al. 2018).

Result files and manifests are untrusted: read bounded, every field checked
(a manifest's row or protocol holding a control character is refused). Names
and settings reach the three formats neutralised: in CSV a text starting with
``=``, ``+``, ``-``, ``@``, a tab or a carriage return (a formula to a
spreadsheet) gets a ``'`` first, numbers excepted; in Markdown ``|``, ``\\``
and ``<`` are escaped; in LaTeX the special characters are; and in all three
a control character (a newline) becomes a space.
"""
from __future__ import annotations

import csv
import io
import json
import math
import pathlib
import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from .evaluation import RunResult
from .files import atomic_write, read_bounded

__all__ = ["MANIFEST", "METRICS", "ResultTable", "Run", "Summary", "TableError", "collect_runs", "protocol_label",
           "read_manifest", "read_results"]

#: the sweep's manifest, in the sweep's folder: cell names, their rows, protocols and full configurations
MANIFEST = "sweep.json"
MANIFEST_FORMAT, MANIFEST_VERSION = "aidge_incremental sweep", 1
#: the metrics of a table, in its order, with their column titles
METRICS = (("average_incremental_accuracy", "avg. incremental"), ("last_accuracy", "last"),
           ("average_forgetting", "forgetting"))
#: settings whose runs are repetitions of one experiment (averaged)
REPEAT_KEYS = ("seed", "class_order")
#: settings that say which problem is solved: the columns of runs outside a sweep
SCENARIO_KEYS = ("dataset", "model", "hidden", "initial", "increment")
#: settings that say where a run wrote or read, not what it is
PLACE_KEYS = ("output_dir", "export_dir", "export_target", "data_dir")
#: a results.json or sweep.json larger than this is refused (a 1000-step run's is under 20 MB)
MAX_RESULTS_BYTES = 64 << 20
#: a cell's name: one path component, no dot first
CELL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+=,-]{0,199}$")
#: characters no name or setting of a table holds (newlines would break a Markdown row or a LaTeX comment)
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
#: first characters that make a spreadsheet read a CSV cell as a formula (OWASP's CSV injection)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


class TableError(ValueError):
    """A run directory, results file or manifest cannot make a table; the message names it."""


@dataclass
class Run:
    """One run's results and where it stands in the table."""
    path: pathlib.Path
    row: str
    protocol: Dict[str, Any]
    result: RunResult


def protocol_label(protocol: Dict[str, Any]) -> str:
    """``{"memory": 200, "dataset": "mnist"}`` -> ``"memory=200, dataset=mnist"``."""
    return ", ".join(f"{k}={_text(v)}" for k, v in protocol.items())


def _text(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "none"
    if isinstance(value, (list, tuple)):
        return "x".join(_text(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True, separators=(",", ":"))
    return str(value)


# ------------------------------------------------------------------ reading --

def _read_json(path: pathlib.Path, what: str):
    raw = read_bounded(path, what, limit=MAX_RESULTS_BYTES, error=TableError)
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise TableError(f"{what} {path} is not valid JSON: {e}") from None


def read_results(path) -> RunResult:
    """The results.json of a run (a file, or a run directory holding one),
    every field checked: accuracies are finite numbers in [0, 1], the accuracy
    matrix is lower-triangular with one row per step."""
    path = pathlib.Path(path)
    if path.is_dir():
        path = path / "results.json"
    data = _read_json(path, "results file")

    def bad(why):
        return TableError(f"results file {path}: {why}")

    if not isinstance(data, dict) or not isinstance(data.get("method"), str) \
            or not isinstance(data.get("config"), dict) or not isinstance(data.get("classifiers"), dict):
        raise bad("not a run's results (method, config and classifiers expected)")
    if not data["classifiers"]:
        raise bad("no classifier")
    steps = None
    for name, h in data["classifiers"].items():
        if not isinstance(h, dict):
            raise bad(f"classifier {name!r} is not a mapping")
        seen, matrix = h.get("acc_seen"), h.get("matrix")
        if not isinstance(seen, list) or not seen or not isinstance(matrix, list) or len(matrix) != len(seen):
            raise bad(f"classifier {name!r}: acc_seen and matrix must be lists of one entry per step")
        if steps is not None and len(seen) != steps:
            raise bad(f"classifier {name!r} has {len(seen)} steps, another has {steps}")
        steps = len(seen)
        for t, row in enumerate(matrix):
            if not isinstance(row, list) or len(row) != t + 1:
                raise bad(f"classifier {name!r}: matrix row {t} must hold {t + 1} accuracies")
        for key in ("acc_seen", "acc_new", "acc_old"):
            values = h.get(key)
            if not isinstance(values, list) or len(values) != steps:
                raise bad(f"classifier {name!r}: {key} must be a list of {steps} accuracies")
        numbers = seen + h["acc_new"] + [a for a in h["acc_old"] if a is not None] + [a for r in matrix for a in r]
        for a in numbers:
            if isinstance(a, bool) or not isinstance(a, (int, float)) or not 0.0 <= a <= 1.0:
                raise bad(f"classifier {name!r}: accuracy {a!r} is not a number in [0, 1]")
    classes = data.get("classes_seen", [])
    if not isinstance(classes, list) or (classes and (len(classes) != steps or not all(
            isinstance(c, int) and not isinstance(c, bool) and c > 0 for c in classes))):
        raise bad(f"classes_seen must be {steps} positive integers")
    if not isinstance(data.get("class_order", []), list):
        raise bad("class_order must be a list")
    n_steps = data.get("n_steps", 0)
    if isinstance(n_steps, bool) or not isinstance(n_steps, int) or not 0 <= n_steps < 1 << 20:
        raise bad(f"n_steps must be a number of steps, got {n_steps!r}")
    return RunResult.from_dict(data)


def read_manifest(directory) -> dict:
    """A sweep's manifest (``DIR/sweep.json``), checked: a list of cells, each
    with a name that is one path component, a row, a protocol and a configuration."""
    path = pathlib.Path(directory) / MANIFEST
    data = _read_json(path, "sweep manifest")
    if not isinstance(data, dict) or data.get("format") != MANIFEST_FORMAT:
        raise TableError(f"{path} is not an aidge_incremental sweep manifest")
    if data.get("version") != MANIFEST_VERSION:
        raise TableError(f"sweep manifest {path} has version {data.get('version')!r}; this version reads "
                         f"{MANIFEST_VERSION}")
    cells = data.get("cells")
    if not isinstance(cells, list):
        raise TableError(f"sweep manifest {path}: cells must be a list")
    names = set()
    for i, cell in enumerate(cells):
        if not isinstance(cell, dict) or not isinstance(cell.get("name"), str) \
                or not CELL_NAME.match(cell["name"]) or not isinstance(cell.get("row"), str) \
                or not isinstance(cell.get("protocol"), dict) or not isinstance(cell.get("config"), dict):
            raise TableError(f"sweep manifest {path}: cell {i} must have a name (one path component), "
                             "a row, a protocol and a config")
        if _CONTROL.search(cell["row"]) or _CONTROL.search(protocol_label(cell["protocol"])):
            raise TableError(f"sweep manifest {path}: cell {cell['name']}: its row or protocol holds a control "
                             "character (a newline?); rows and protocols are one line of text")
        if cell["name"] in names:
            raise TableError(f"sweep manifest {path}: cell {cell['name']!r} is listed twice")
        names.add(cell["name"])
    return data


def collect_runs(paths: Sequence, missing: Optional[List[str]] = None) -> List[Run]:
    """The runs of ``paths``: a sweep's folder (its manifest's finished cells),
    a run directory (holding results.json), or a folder of run directories.
    Runs that have not finished (a sweep's cells, or results.json without every
    step) are left out and appended to ``missing``."""
    runs: List[Run] = []
    loose: List[Tuple[pathlib.Path, RunResult]] = []
    for path in paths:
        path = pathlib.Path(path)
        if (path / MANIFEST).is_file():
            manifest = read_manifest(path)
            for cell in manifest["cells"]:
                folder = path / cell["name"]
                if not (folder / "results.json").is_file():
                    if missing is not None:
                        missing.append(str(folder))
                    continue
                result = read_results(folder)
                if not result.complete:
                    if missing is not None:
                        missing.append(str(folder))
                    continue
                if _identity(result.config) != _identity(cell["config"]):
                    raise TableError(f"{folder} holds a run of another configuration than the sweep's cell "
                                     f"{cell['name']} ({_differences(cell['config'], result.config)})")
                runs.append(Run(folder, cell["row"], dict(cell["protocol"]), result))
        elif (path / "results.json").is_file():
            loose.append((path, read_results(path)))
        elif path.is_dir():
            found = sorted(p for p in path.iterdir() if (p / "results.json").is_file())
            if not found:
                raise TableError(f"{path} holds no run: no {MANIFEST}, no results.json, no run directory")
            loose.extend((p, read_results(p)) for p in found)
        else:
            raise TableError(f"{path} is not a directory")
    if missing is not None:
        missing.extend(str(p) for p, r in loose if not r.complete)
    return runs + _label_loose_runs([(p, r) for p, r in loose if r.complete])


def _some(names: Sequence[str], limit: int = 4) -> str:
    """The first few names, and how many more."""
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _identity(config: dict) -> dict:
    return {k: v for k, v in config.items() if k not in PLACE_KEYS}


def _differences(want: dict, got: dict) -> str:
    keys = sorted(k for k in set(want) | set(got) if k not in PLACE_KEYS and want.get(k) != got.get(k))
    return "; ".join(f"{k}: {want.get(k)!r} in the sweep, {got.get(k)!r} in the run" for k in keys[:5])


def _label_loose_runs(loose) -> List[Run]:
    """Rows and columns of runs outside a sweep (see the module's docstring)."""
    if not loose:
        return []

    def varying(configs, keys):
        return [k for k in keys if len({json.dumps(c.get(k), sort_keys=True) for c in configs}) > 1]

    configs = [r.config for _, r in loose]
    all_keys = list(dict.fromkeys(k for c in configs for k in c))
    columns = varying(configs, SCENARIO_KEYS)
    rest = [k for k in all_keys if k not in SCENARIO_KEYS + REPEAT_KEYS + PLACE_KEYS + ("method",)]
    suffix = {}
    for method in dict.fromkeys(r.method for _, r in loose):
        suffix[method] = varying([r.config for _, r in loose if r.method == method], rest)
    runs = []
    for path, result in loose:
        keys = suffix[result.method]
        row = result.method + ("" if not keys else " " + ", ".join(
            f"{k}={_text(result.config.get(k))}" for k in keys))
        runs.append(Run(path, row, {k: result.config.get(k) for k in columns}, result))
    return runs


# ------------------------------------------------------------------ table --

@dataclass
class Summary:
    """The runs of one row in one protocol: metrics and curves over seeds."""
    runs: List[Run]
    values: Dict[str, np.ndarray]          #: metric -> one value per run
    curves: np.ndarray                     #: [runs, steps] accuracy on the classes seen
    classes_seen: List[int] = field(default_factory=list)

    @property
    def n(self) -> int:
        return len(self.runs)

    def mean(self, metric: str) -> float:
        return float(np.mean(self.values[metric]))

    def sd(self, metric: str) -> float:
        """Sample standard deviation (ddof = 1); NaN for a single run."""
        v = self.values[metric]
        return float(np.std(v, ddof=1)) if len(v) > 1 else float("nan")


class ResultTable:
    """Rows (method or variant, and classifier) × protocols, mean ± sd over seeds.

    ``ResultTable(collect_runs(["runs/sweep"])).markdown()``; also :meth:`csv`,
    :meth:`latex` and :meth:`plot` (one accuracy-curve PNG per protocol)."""

    def __init__(self, runs: Sequence[Run], missing: Sequence[str] = ()):
        if not runs:
            raise TableError("no finished run to tabulate" + (f" ({len(missing)} unfinished)" if missing else ""))
        self.missing = list(missing)
        self.rows: List[str] = []
        self.protocols: List[str] = []
        self.protocol_settings: Dict[str, Dict[str, Any]] = {}
        groups: Dict[Tuple[str, str], List[Tuple[Run, str]]] = {}
        for run in runs:
            label = protocol_label(run.protocol)
            self.protocol_settings.setdefault(label, run.protocol)
            if label not in self.protocols:
                self.protocols.append(label)
            classifiers = list(run.result.classifiers)
            for clf in classifiers:
                row = run.row if len(classifiers) == 1 else f"{run.row} ({clf})"
                if row not in self.rows:
                    self.rows.append(row)
                groups.setdefault((row, label), []).append((run, clf))
        self.cells: Dict[Tuple[str, str], Summary] = {}
        for key, members in groups.items():
            self.cells[key] = self._summarise(key, members)
        self.common = self._common_settings(runs)

    @staticmethod
    def _summarise(key, members) -> Summary:
        seen = {}
        for run, _ in members:
            repeat = json.dumps([run.result.config.get(k) for k in REPEAT_KEYS])
            if repeat in seen:
                raise TableError(f"{seen[repeat]} and {run.path} are the same repetition (seed "
                                 f"{run.result.config.get('seed')}) of row {key[0]!r}"
                                 + (f" in protocol {key[1]}" if key[1] else "")
                                 + ": a mean over both would count one run twice")
            seen[repeat] = run.path
        steps = {len(run.result.classifiers[clf].acc_seen) for run, clf in members}
        if len(steps) > 1:
            raise TableError(f"row {key[0]!r}{' in protocol ' + key[1] if key[1] else ''} mixes runs of "
                             f"{sorted(steps)} steps: " + ", ".join(str(r.path) for r, _ in members))
        values = {m: np.array([run.result.classifiers[clf].metrics()[m] for run, clf in members])
                  for m, _ in METRICS}
        curves = np.array([run.result.classifiers[clf].acc_seen for run, clf in members], dtype=float)
        classes = members[0][0].result.classes_seen
        return Summary([r for r, _ in members], values, curves, list(classes))

    @staticmethod
    def _common_settings(runs) -> Dict[str, Any]:
        """Scenario settings that every run shares (said once, under the table)."""
        out = {}
        for key in SCENARIO_KEYS:
            values = {json.dumps(r.result.config.get(key), sort_keys=True) for r in runs}
            if len(values) == 1 and runs[0].result.config.get(key) is not None:
                out[key] = runs[0].result.config.get(key)
        return out

    # -- text --

    def _ns(self) -> List[int]:
        return sorted({s.n for s in self.cells.values()})

    def _entry(self, summary: Optional[Summary], metric: str, latex: bool = False) -> str:
        if summary is None:
            return "–" if not latex else "--"
        mean, sd = 100 * summary.mean(metric), 100 * summary.sd(metric)
        pm = r" \pm " if latex else " ± "
        text = f"{mean:.2f}" if math.isnan(sd) else f"{mean:.2f}{pm}{sd:.2f}"
        if latex:
            text = f"${text}$"
        if len(self._ns()) > 1:
            text += f" (n={summary.n})"
        return text

    def note(self) -> str:
        """What the numbers are: statistic, number of seeds, metrics, common settings."""
        ns = self._ns()
        over = f"n = {ns[0]} seed{'s' if ns[0] > 1 else ''}" if len(ns) == 1 else "n seeds (given per entry)"
        sd = "mean ± sample standard deviation (ddof = 1)" if max(ns) > 1 else "one run per entry (no sd)"
        text = (f"In %: {sd} over {over}; average incremental accuracy (Rebuffi et al. 2017), accuracy "
                "after the last step, average forgetting (Chaudhry et al. 2018). Rows: method or variant "
                "(NME and head classifiers apart); columns: protocols.")
        if self.common:
            text += " " + ", ".join(f"{k} {_text(v)}" for k, v in self.common.items()) + "."
        if self.missing:
            text += f" {len(self.missing)} run(s) not finished, left out: " + _some(self.missing) + "."
        return text

    def _headers(self) -> List[str]:
        return [f"{p} {title}" if p else title for p in self.protocols for _, title in METRICS]

    def markdown(self) -> str:
        lines = ["| method | " + " | ".join(_markdown(h) for h in self._headers()) + " |",
                 "|---|" + "---|" * (len(self.protocols) * len(METRICS))]
        for row in self.rows:
            entries = [self._entry(self.cells.get((row, p)), m) for p in self.protocols for m, _ in METRICS]
            lines.append(f"| {_markdown(row)} | " + " | ".join(entries) + " |")
        return "\n".join(lines) + "\n\n" + _one_line(self.note()) + "\n"

    def csv(self) -> str:
        """One line per row and protocol, in %, with full precision."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["row", "protocol", "n", "seeds"] + [f"{m}_{s}" for m, _ in METRICS for s in ("mean", "sd")])
        for row in self.rows:
            for p in self.protocols:
                s = self.cells.get((row, p))
                if s is None:
                    continue
                seeds = " ".join(str(r.result.config.get("seed")) for r in s.runs)
                stats = [v for m, _ in METRICS for v in (100 * s.mean(m), 100 * s.sd(m))]
                writer.writerow([_csv(row), _csv(p), s.n, _csv(seeds)]
                                + ["" if math.isnan(v) else repr(v) for v in stats])
        return out.getvalue()

    def latex(self) -> str:
        k = len(METRICS)
        cols = "l" + " ".join(["c" * k] * len(self.protocols))
        lines = [r"\begin{tabular}{" + cols + "}", r"\toprule"]
        if any(self.protocols):
            lines.append(" & " + " & ".join(rf"\multicolumn{{{k}}}{{c}}{{{_latex(p)}}}" for p in self.protocols)
                         + r" \\")
            lines.append("".join(rf"\cmidrule(lr){{{2 + i * k}-{1 + (i + 1) * k}}}"
                                 for i in range(len(self.protocols))))
        titles = [_latex(t.capitalize()) for _, t in METRICS] * len(self.protocols)
        lines.append("Method & " + " & ".join(titles) + r" \\")
        lines.append(r"\midrule")
        for row in self.rows:
            entries = [self._entry(self.cells.get((row, p)), m, latex=True) for p in self.protocols
                       for m, _ in METRICS]
            lines.append(_latex(row) + " & " + " & ".join(entries) + r" \\")
        lines += [r"\bottomrule", r"\end{tabular}", "% " + _one_line(self.note()).replace("%", r"\%")]
        return "\n".join(lines) + "\n"

    def format(self, fmt: str) -> str:
        """``markdown``, ``csv`` or ``latex``."""
        writers = {"markdown": self.markdown, "csv": self.csv, "latex": self.latex}
        if fmt not in writers:
            raise TableError(f"unknown table format {fmt!r}: one of {', '.join(writers)}")
        return writers[fmt]()

    # -- plots --

    def plot(self, directory) -> List[pathlib.Path]:
        """One PNG per protocol: each row's accuracy on the classes seen after
        every step, mean over seeds with a band of ± one sd."""
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        directory = pathlib.Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        written = []
        for p in self.protocols:
            fig, ax = plt.subplots(figsize=(6, 4), dpi=110)
            for row in self.rows:
                s = self.cells.get((row, p))
                if s is None:
                    continue
                steps = s.curves.shape[1]
                x = np.asarray(s.classes_seen, float) if len(s.classes_seen) == steps else np.arange(1, steps + 1)
                mean = 100 * s.curves.mean(axis=0)
                line, = ax.plot(x, mean, marker="o", label=row + (f" (n={s.n})" if s.n > 1 else ""))
                if s.n > 1:
                    sd = 100 * s.curves.std(axis=0, ddof=1)
                    ax.fill_between(x, mean - sd, mean + sd, color=line.get_color(), alpha=0.2, linewidth=0)
            any_classes = any(len(s.classes_seen) for (r, q), s in self.cells.items() if q == p)
            ax.set_xlabel("number of classes seen" if any_classes else "step")
            ax.set_ylabel("accuracy on seen classes (%)")
            ax.set_ylim(0, 100)
            ax.grid(alpha=0.3)
            ax.legend(fontsize="small")
            ax.set_title(p or ", ".join(f"{k} {_text(v)}" for k, v in self.common.items()), fontsize="medium")
            fig.tight_layout()
            buffer = io.BytesIO()
            fig.savefig(buffer, format="png")
            plt.close(fig)
            name = "accuracy" + (("-" + re.sub(r"[^A-Za-z0-9._+=-]+", "_", p.replace(", ", "-"))) if p else "")
            path = directory / f"{name[:150]}.png"
            atomic_write(path, buffer.getvalue())
            written.append(path)
        return written


_LATEX = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
          "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
          "[": "{[}", "]": "{]}"}  # a [ after \\ would be its optional argument


def _one_line(text: str) -> str:
    """``text`` with its control characters (newlines, tabs, escapes) as spaces."""
    return _CONTROL.sub(" ", text)


def _latex(text: str) -> str:
    return "".join(_LATEX.get(c, c) for c in _one_line(text))


def _markdown(text: str) -> str:
    """A table cell of one line: ``|`` (which would end the cell), ``\\`` and ``<`` (raw HTML) escaped."""
    return re.sub(r"([\\|<])", r"\\\1", _one_line(text))


def _csv(text: str) -> str:
    """A CSV cell no spreadsheet reads as a formula, on one line: text starting
    (after any spaces) with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return
    gets a ``'`` first (OWASP's advice), unless it is a plain number; control
    characters then become spaces (the csv module leaves a lone ``\\r`` unquoted)."""
    if (text.startswith(_FORMULA_START) or text.lstrip().startswith(_FORMULA_START)) \
            and not _NUMBER.match(text.strip()):
        text = "'" + text
    return _one_line(text)
