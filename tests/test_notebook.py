"""The tutorial notebook runs top to bottom, and what it prints is checked
against independent recomputations from the arrays it produced: accuracies
recomputed with NumPy from predictions and labels, iCaRL's NME predictions
recomputed by a plain NumPy float64 nearest-mean from the features and the
memory, and the ONNX exports' outputs (onnxruntime) against the Aidge model."""
import pathlib
import re
import shutil

import nbclient
import nbformat
import numpy as np
import pytest

from aidge_incremental import ExperimentConfig, run_experiment
from aidge_incremental.datasets import load_digits
from aidge_incremental.evaluation import RunResult

pytestmark = pytest.mark.slow  # runs the notebook

NOTEBOOK = (pathlib.Path(__file__).resolve().parents[1]
            / "examples" / "tutorials" / "Incremental_tutorial" / "incremental.ipynb")

# Appended to a copy of the notebook: saves what the notebook computed, for the checks below.
DUMP = """
np.savez({path!r}, y_test=digits.y_test, class_order=class_order, nme_pred=nme_pred, nme_onnx=nme_onnx,
         head_onnx=head_logits, head_aidge=model.logits(x_test), test_features=model.features(x_test),
         memory_features=model.features(digits.to_input(icarl_method.replay_memory.samples())),
         memory_labels=icarl_method.replay_memory.labels())
"""


def stdout_of(notebook) -> str:
    return "".join(out.get("text", "") for cell in notebook.cells if cell.cell_type == "code"
                   for out in cell.outputs if out.get("output_type") == "stream")


def table_rows(text: str, method: str) -> np.ndarray:
    """The rows (step, classes, then percentages; NaN for '-') of the table
    printed just before ``method``'s summary line."""
    block = text[:text.index(f"{method}/")].rsplit("step  classes", 1)[1].splitlines()[1:]
    return np.array([[np.nan if v == "-" else float(v.rstrip("%")) for v in line.split()]
                     for line in block if line.strip()])


def summary(text: str, method: str) -> dict:
    line = re.search(rf"{method}: average incremental ([\d.]+)%, last ([\d.]+)%, forgetting ([\d.]+)%", text)
    assert line, f"the notebook prints {method}'s summary"
    return dict(zip(("average", "last", "forgetting"), map(float, line.groups())))


def nearest_mean_numpy(test_features, memory_features, memory_labels):
    """iCaRL's classifier (Rebuffi et al. 2017, Alg. 1), float64: the class whose
    normalised mean of normalised exemplar features is nearest."""
    unit = lambda f: f / np.linalg.norm(f, axis=1, keepdims=True)
    phi, mem = unit(test_features.astype(np.float64)), unit(memory_features.astype(np.float64))
    classes = np.unique(memory_labels)
    means = unit(np.stack([mem[memory_labels == c].mean(axis=0) for c in classes]))
    distances = np.linalg.norm(phi[:, None, :] - means[None, :, :], axis=2)
    return classes[distances.argmin(axis=1)], np.sort(distances, axis=1)


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("notebook")
    copy = tmp / NOTEBOOK.name
    shutil.copy(NOTEBOOK, copy)
    notebook = nbformat.read(copy, as_version=4)
    for cell in notebook.cells:  # run from a clean slate, not the stored outputs
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    arrays = tmp / "arrays.npz"
    notebook.cells.append(nbformat.v4.new_code_cell(DUMP.format(path=str(arrays))))
    nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp)}}).execute()  # raises on a cell error
    return stdout_of(notebook), dict(np.load(arrays))


def test_printed_accuracies_agree_with_a_recomputation(executed):
    text, a = executed
    y, order = a["y_test"], a["class_order"]
    nme, head = order[a["nme_pred"]], order[a["head_aidge"].argmax(axis=1)]
    nme_accuracy, head_accuracy = 100 * np.mean(nme == y), 100 * np.mean(head == y)
    last = re.search(r"iCaRL NME: last ([\d.]+)%", text)
    assert float(last.group(1)) == pytest.approx(nme_accuracy, abs=0.005)
    icarl = table_rows(text, "icarl")
    assert icarl[-1, 1] == 10 and len(np.unique(y)) == 10  # the last row covers the whole test set
    assert icarl[-1, 2] == pytest.approx(nme_accuracy, abs=0.005)   # nme seen
    assert icarl[-1, 5] == pytest.approx(head_accuracy, abs=0.005)  # head seen
    old = np.isin(y, order[:8])  # the last step brought the last two classes of the order
    for column, predictions in ((3, nme), (6, head)):  # old, then new, of each classifier
        assert icarl[-1, column] == pytest.approx(100 * np.mean(predictions[old] == y[old]), abs=0.005)
        assert icarl[-1, column + 1] == pytest.approx(100 * np.mean(predictions[~old] == y[~old]), abs=0.005)
    exported = re.search(r"accuracy of the exported NME classifier: ([\d.]+)%", text)
    assert float(exported.group(1)) == pytest.approx(100 * np.mean(a["nme_onnx"] == y), abs=0.005)


def test_nme_predictions_are_the_numpy_nearest_mean(executed):
    _, a = executed
    assert np.bincount(a["memory_labels"]).tolist() == [20] * 10  # 200 exemplars, 10 classes
    reference, distances = nearest_mean_numpy(a["test_features"], a["memory_features"], a["memory_labels"])
    clear = distances[:, 1] - distances[:, 0] > 1e-5  # float32 vs float64 may only differ on near-ties
    assert clear.mean() > 0.98
    np.testing.assert_array_equal(a["nme_pred"][clear], reference[clear])


def test_onnx_exports_answer_like_the_model(executed):
    _, a = executed
    np.testing.assert_allclose(a["head_onnx"], a["head_aidge"], rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(a["nme_onnx"], a["class_order"][a["nme_pred"]])


def test_the_text_about_lwf_describes_the_output(executed):
    """The notebook says: LwF keeps part of the old classes where fine-tuning keeps
    none, forgets less than half as much, scores higher on all seen classes after
    step 0, and stays far below iCaRL."""
    text, _ = executed
    finetune, lwf = table_rows(text, "finetune"), table_rows(text, "lwf")
    assert np.all(finetune[1:, 3] == 0) and np.all(lwf[1:, 3] > 0)   # old column
    assert np.all(lwf[1:, 2] > finetune[1:, 2])                        # seen column
    assert summary(text, "lwf/head")["forgetting"] < summary(text, "finetune/head")["forgetting"] / 2
    assert summary(text, "lwf/head")["last"] < summary(text, "icarl/nme")["last"] - 30


def test_run_experiment_returns_the_trained_method():
    digits = load_digits()
    result = run_experiment(ExperimentConfig(method="icarl", memory=40, epochs=1, initial=5, increment=5,
                                             seed=3), digits)
    method = result.trained_method
    assert len(method.replay_memory) == 40
    # its predictions on the whole test set give the last step's recorded accuracies
    order = np.array(result.class_order)
    x = digits.to_input(digits.x_test)
    for name in ("nme", "head"):
        accuracy = np.mean(order[method.predict(x, name)] == digits.y_test)
        assert accuracy == pytest.approx(result.classifiers[name].acc_seen[-1])
    assert "trained_method" not in result.to_dict()   # not serialised
    assert RunResult.from_dict(result.to_dict()).trained_method is None


def test_stored_notebook_has_no_errors_and_runs_in_order():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    counts = [c.execution_count for c in notebook.cells if c.cell_type == "code"]
    assert counts == list(range(1, len(counts) + 1)), "executed top to bottom, no hidden state"
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.source.strip(), "no empty cells"
            assert all(o.get("output_type") != "error" for o in cell.outputs)
            assert "build_method" not in cell.source and ".learn(" not in cell.source  # public API only
