"""A method registered from user code runs from the API and the CLI; a plug-in
package adds one through the entry-point group."""
import json
import sys

import numpy as np
import pytest

from aidge_incremental.cli import main
from aidge_incremental.config import ExperimentConfig
from aidge_incremental.experiment import run_experiment
from aidge_incremental.loss import cross_entropy, tensor_value
from aidge_incremental.methods import METHODS, IncrementalMethod, Replay, register_method
from aidge_incremental.options import Option
from aidge_incremental.registry import Registry, UnknownEntryError


class SmoothFinetune(IncrementalMethod):
    """Fine-tuning with label smoothing (Szegedy et al. 2016): one file of user code."""
    name = "smooth-finetune"
    components = (Replay,)
    options = (Option("smoothing", float, 0.1, "label smoothing", minimum=0.0, maximum=1.0,
                      source="Szegedy et al. 2016 use 0.1"),)

    def objective(self, batch, outputs):
        target = batch.target_matrix(self.n_seen)
        target = (1 - self.smoothing) * target + self.smoothing / self.n_seen
        return {"classification": tensor_value(cross_entropy(outputs.logits, outputs.tensor(target),
                                                             accumulate=True))}


@pytest.fixture
def registered():
    register_method(SmoothFinetune)
    yield SmoothFinetune
    METHODS.unregister(SmoothFinetune.name)


def test_registered_method_runs_from_the_api(registered):
    common = dict(epochs=2, seed=3)
    plain = run_experiment(ExperimentConfig(method="finetune", **common))
    smooth0 = run_experiment(ExperimentConfig(method="smooth-finetune", smoothing=0.0, **common))
    smooth = run_experiment(ExperimentConfig(method="smooth-finetune", smoothing=0.3, **common))
    # with no smoothing it is fine-tuning exactly; with smoothing its own loss trains
    assert smooth0.main.matrix == plain.main.matrix
    assert smooth.main.matrix != plain.main.matrix
    assert isinstance(smooth.trained_method, SmoothFinetune)


def test_registered_method_runs_from_the_cli(registered, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["run", "--method", "smooth-finetune", "--smoothing", "0.2", "--epochs", "1",
                 "--output-dir", str(out), "--no-progress"]) == 0
    result = json.loads((out / "results.json").read_text())
    assert result["method"] == "smooth-finetune" and result["config"]["smoothing"] == 0.2
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    assert "[smooth-finetune] label smoothing" in capsys.readouterr().out


def test_register_method_refuses_what_is_not_a_method():
    with pytest.raises(TypeError, match="subclass of IncrementalMethod"):
        register_method(object)

    class Nameless(IncrementalMethod):
        pass
    with pytest.raises(ValueError, match="needs a class attribute name"):
        register_method(Nameless)
    with pytest.raises(ValueError, match="already registered"):
        register_method(type("Other", (IncrementalMethod,), {"name": "icarl"}))
    with pytest.raises(UnknownEntryError, match="did you mean 'icarl'"):
        METHODS["icarll"]


def test_a_plugin_package_adds_a_method_through_its_entry_point(tmp_path, monkeypatch):
    package = tmp_path / "cil_plugin"
    package.mkdir()
    (package / "__init__.py").write_text(
        "from aidge_incremental.methods import IncrementalMethod\n"
        "class Plugged(IncrementalMethod):\n    name = 'plugged'\n")
    info = tmp_path / "cil_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: cil-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[aidge_incremental.test_methods]\nplugged = cil_plugin:Plugged\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    registry = Registry("method", entry_points="aidge_incremental.test_methods")
    assert "plugged" in registry and registry["plugged"].__name__ == "Plugged"
    assert sys.modules["cil_plugin"].Plugged is registry["plugged"]
