"""The aidge-incremental command line."""
import json
import subprocess
import sys

import pytest

from aidge_incremental.cli import main


def test_run_writes_results(tmp_path, capsys):
    assert main(["run", "--epochs", "2", "--output-dir", str(tmp_path), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "icarl/nme: average incremental" in out and "step" in out
    data = json.loads((tmp_path / "results.json").read_text())
    assert data["method"] == "icarl" and data["config"]["memory"] == 200
    assert len(data["classifiers"]["nme"]["acc_seen"]) == 5


def test_compare_and_config_file(tmp_path, capsys):
    config = tmp_path / "exp.yaml"
    config.write_text("epochs: 2\ninitial: 4\nincrement: 3\nseed: 3\n")
    assert main(["compare", "--methods", "finetune", "icarl", "--config", str(config),
                 "--output-dir", str(tmp_path / "out"), "--memory", "50"]) == 0
    out = capsys.readouterr().out
    assert "finetune" in out and "icarl (nme)" in out
    assert (tmp_path / "out" / "comparison.png").exists()
    data = json.loads((tmp_path / "out" / "icarl" / "results.json").read_text())
    assert data["config"]["initial"] == 4 and data["config"]["memory"] == 50
    assert data["classes_seen"] == [4, 7, 10]
    assert json.loads((tmp_path / "out" / "finetune" / "results.json").read_text())["config"]["memory"] == 50
    # an option that none of the compared methods takes
    assert main(["compare", "--methods", "joint", "--temperature", "2", "--output-dir",
                 str(tmp_path / "o2")]) == 2
    assert "apply to none of the compared methods" in capsys.readouterr().err


BILLION_LAUGHS = """a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]
e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]
f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]
g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]
h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g, *g]
class_order: [*h, *h, *h, *h, *h, *h, *h, *h, *h, *h]
"""

# (file name, content, what the error must say): each refused before any training
BAD_FILES = [
    ("typo.json", json.dumps({"epochs": 1, "budget": 10}), "unknown option 'budget'"),
    ("float.yaml", "epochs: 1.5\n", "epochs must be an integer, got 1.5"),
    ("hidden.yaml", "hidden: 128\n", "hidden must be a list"),
    ("lr.yaml", "lr: '0.1'\n", "lr must be a number, got '0.1'"),
    ("export.yaml", "export_dir: 5\n", "export_dir must be a string"),
    ("policy.yaml", "memory_policy: totl\n", "memory_policy must be one of total, per_class; got 'totl'"),
    ("joint.yaml", "method: joint\nmemory: 20\n", "'memory' does not apply to method 'joint'"),
    ("lwf.yaml", "method: lwf\nselection: random\nmemory: 0\nl2_old: 1\n", "unknown option 'l2_old'"),
    ("broken.json", '{"epochs": 1,', "broken.json: invalid JSON at line 1"),
    ("broken.yaml", "epochs: [1\n", "broken.yaml: invalid YAML"),
    ("list.yaml", "- 1\n- 2\n", "must hold a mapping"),
    ("twice.json", json.dumps({"batch-size": 8, "batch_size": 64}), "option 'batch_size' is given twice"),
    ("laughs.yaml", BILLION_LAUGHS, "expands to more than"),
    ("nan.json", '{"lr": NaN}', "lr must be a finite number"),
    ("order.json", json.dumps({"class_order": [0] * 150_000}), "class_order has 150000 items; at most 100000"),
]


@pytest.mark.parametrize("name,content,message", BAD_FILES, ids=[b[0] for b in BAD_FILES])
def test_bad_config_files_are_refused_naming_the_problem(tmp_path, capsys, name, content, message):
    path = tmp_path / name
    path.write_text(content)
    out = tmp_path / "out"
    assert main(["run", "--config", str(path), "--output-dir", str(out)]) == 2
    err = capsys.readouterr().err
    assert message in err, err
    assert not out.exists(), "refused before the run started"


@pytest.mark.parametrize("argv,message", [
    (["--hidden", "0"], "hidden[0] must be >= 1, got 0"),
    (["--method", "joint", "--memory", "5"], "'memory' does not apply to method 'joint'"),
    (["--method", "finetune", "--temperature", "2"], "'temperature' does not apply to method 'finetune'"),
    (["--lr", "-1"], "lr must be >= "),
    (["--epochs", "0"], "epochs must be >= 1"),
    (["--seed", "99999999999999999999"], "seed must be <= "),
    (["--method", "icarl", "--memory", "0"], "memory must be >= 1"),
    (["--dataset", "cifar10", "--export-dir", "x", "--export-target", "cpp-int8"],
     "cannot carry cifar10's per-channel normalisation"),
], ids=lambda v: " ".join(v) if isinstance(v, list) else None)
def test_bad_command_line_values_are_refused(tmp_path, capsys, argv, message):
    out = tmp_path / "out"
    assert main(["run", *argv, "--output-dir", str(out)]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_argparse_rejects_wrong_types_naming_the_option(capsys):
    for argv, flag in ((["--epochs", "1.5"], "--epochs"), (["--memory-policy", "totl"], "--memory-policy")):
        with pytest.raises(SystemExit):
            main(["run", *argv])
        err = capsys.readouterr().err
        assert f"argument {flag}" in err


def test_first_step_settings_from_the_command_line(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["run", "--method", "finetune", "--epochs", "1", "--hidden", "8", "--first-step",
                 "{epochs: 2, lr: 0.1}", "--output-dir", str(out), "--no-progress"]) == 0
    assert json.loads((out / "results.json").read_text())["config"]["first_step"] == {"epochs": 2, "lr": 0.1}
    assert main(["run", "--first-step", "{lrr: 1}", "--output-dir", str(tmp_path / "o2")]) == 2
    assert "first_step: unknown settings ['lrr']" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["run", "--first-step", "[1, 2]"])
    assert "expected a mapping" in capsys.readouterr().err


def test_every_declared_option_is_on_the_command_line(capsys):
    from aidge_incremental.config import COMMON_OPTIONS
    from aidge_incremental.training import TRAINING_OPTIONS
    from aidge_incremental.methods import METHODS
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    text = capsys.readouterr().out
    names = [o.name for o in COMMON_OPTIONS + TRAINING_OPTIONS if o.name != "method"]
    names += [o.name for cls in METHODS.values() for o in cls.options]
    for name in names:
        assert "--" + name.replace("_", "-") in text, name
    assert "[attentive, icarl, lwf, lwm, mixup]" in text  # a method option says which methods take it


def test_missing_data_is_an_error_not_a_traceback(tmp_path, capsys):
    assert main(["run", "--dataset", "mnist", "--data-dir", str(tmp_path / "none"),
                 "--output-dir", str(tmp_path / "o")]) == 2
    assert "MNIST directory" in capsys.readouterr().err


def test_module_entry_point(tmp_path):
    out = subprocess.run([sys.executable, "-m", "aidge_incremental.cli", "--help"], capture_output=True,
                         text=True, check=True, cwd=tmp_path).stdout
    assert "run" in out and "compare" in out


def test_help_and_predict_do_not_load_what_they_do_not_use(tmp_path):
    """Start-up: the command line imports a subcommand's modules when it runs;
    ``--help`` loads neither Aidge's Python modules nor scikit-learn, ``predict
    --help`` not the methods (benchmarks/README.md: start-up times)."""
    code = ("import sys\n"
            "from aidge_incremental.cli import main\n"
            "for argv in (['--help'], ['predict', '--help']):\n"
            "    try:\n"
            "        main(argv)\n"
            "    except SystemExit:\n"
            "        pass\n"
            "print(sorted(m for m in ('aidge_core', 'aidge_learning', 'sklearn', 'aidge_incremental.methods', "
            "'torch') if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=tmp_path).stdout
    assert out.strip().splitlines()[-1] == "[]"

