"""The tutorial notebook runs top to bottom, and its figures are the engine's."""
import pathlib
import re
import shutil

import nbclient
import nbformat
import pytest

from aidge_incremental.datasets import load_digits
from aidge_incremental.experiment import ExperimentConfig, run_experiment

NOTEBOOK = (pathlib.Path(__file__).resolve().parents[1]
            / "examples" / "tutorials" / "Incremental_tutorial" / "incremental.ipynb")


def stdout_of(notebook) -> str:
    return "".join(out.get("text", "") for cell in notebook.cells if cell.cell_type == "code"
                   for out in cell.outputs if out.get("output_type") == "stream")


def test_notebook_runs_and_agrees_with_the_engine(tmp_path):
    copy = tmp_path / NOTEBOOK.name
    shutil.copy(NOTEBOOK, copy)
    notebook = nbformat.read(copy, as_version=4)
    for cell in notebook.cells:  # run from a clean slate, not the stored outputs
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}}).execute()  # raises on a cell error
    text = stdout_of(notebook)
    match = re.search(r"iCaRL NME: last ([\d.]+)%, average incremental ([\d.]+)%", text)
    assert match, "the notebook prints iCaRL's figures"
    metrics = run_experiment(ExperimentConfig(method="icarl", memory=200, seed=0), load_digits()).metrics()["nme"]
    assert float(match.group(1)) == pytest.approx(100 * metrics["last_accuracy"], abs=0.005)
    assert float(match.group(2)) == pytest.approx(100 * metrics["average_incremental_accuracy"], abs=0.005)
    exported = re.search(r"accuracy of the exported NME classifier: ([\d.]+)%", text)
    assert float(exported.group(1)) == pytest.approx(float(match.group(1)), abs=0.005)
    assert "NME export agrees with Aidge on 100.0 %" in text


def test_stored_notebook_has_no_errors_and_runs_in_order():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    counts = [c.execution_count for c in notebook.cells if c.cell_type == "code"]
    assert counts == list(range(1, len(counts) + 1)), "executed top to bottom, no hidden state"
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.source.strip(), "no empty cells"
            assert all(o.get("output_type") != "error" for o in cell.outputs)
