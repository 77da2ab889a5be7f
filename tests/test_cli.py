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


def test_bad_options_exit_with_a_message(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"epochs": 1, "budget": 10}))
    with pytest.raises(SystemExit, match="unknown configuration keys"):
        main(["run", "--config", str(bad)])
    assert main(["run", "--dataset", "mnist", "--data-dir", str(tmp_path / "none"),
                 "--output-dir", str(tmp_path / "o")]) == 2
    assert "MNIST directory" in capsys.readouterr().err


def test_module_entry_point(tmp_path):
    out = subprocess.run([sys.executable, "-m", "aidge_incremental.cli", "--help"], capture_output=True,
                         text=True, check=True, cwd=tmp_path).stdout
    assert "run" in out and "compare" in out
