"""What a run writes beside its results: log.csv against the losses the run
computed, the accuracy matrix as CSV and heatmap, the confusion matrix,
top-5 and task-aware accuracy against plain references, and the TensorBoard
events read back."""
import csv
import json
import struct

import numpy as np
import pytest

from aidge_incremental.evaluation import (ClassifierHistory, confusion_matrix, task_aware_predictions,
                                          top_k_accuracy)
from aidge_incremental.experiment import ExperimentConfig, run_experiment
from aidge_incremental.methods.base import IncrementalMethod


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def logged_run(tmp_path_factory, digits):
    """LwF (two loss terms) with a warmed-up cosine schedule (the rate moves within
    an epoch); every batch's terms recorded as the loop passes them on."""
    batches = []
    original = IncrementalMethod.losses

    def recording(self, batch, outputs):
        terms = original(self, batch, outputs)
        batches.append((self.n_known, batch.epoch, len(batch), dict(terms), batch.lr))
        return terms

    IncrementalMethod.losses = recording
    try:
        out = tmp_path_factory.mktemp("logged")
        config = ExperimentConfig(method="lwf", epochs=3, schedule="cosine", warmup_epochs=1, batch_size=50,
                                  initial=4, increment=3, output_dir=str(out))
        result = run_experiment(config, digits)
    finally:
        IncrementalMethod.losses = original
    return out, result, batches


def test_log_csv_holds_each_epochs_loss_terms_lr_and_time(logged_run):
    out, result, batches = logged_run
    rows = read_csv(out / "log.csv")
    assert list(rows[0]) == ["step", "epoch", "loss", "classification", "distillation", "lr", "seconds", "samples"]
    assert len(rows) == 3 * 3  # 3 steps of 3 epochs
    # recomputed here from the batches: sample-weighted means of each term, the mean rate
    known = sorted({b[0] for b in batches})
    for row in rows:
        step, epoch = int(row["step"]), int(row["epoch"])
        mine = [b for b in batches if b[0] == known[step] and b[1] == epoch]
        sizes = np.array([b[2] for b in mine], float)
        for term in ("classification", "distillation"):
            if step == 0 and term == "distillation":  # no teacher in the first step
                assert row[term] == ""
            if row[term] == "":
                assert all(term not in b[3] for b in mine)
                continue
            expected = np.dot(sizes, [b[3][term] for b in mine]) / sizes.sum()
            assert float(row[term]) == pytest.approx(expected, rel=1e-12)
        total = np.dot(sizes, [sum(b[3].values()) for b in mine]) / sizes.sum()
        assert float(row["loss"]) == pytest.approx(total, rel=1e-12)
        assert float(row["lr"]) == pytest.approx(np.mean([b[4] for b in mine]), rel=1e-12)
        assert int(row["samples"]) == sizes.sum() and float(row["seconds"]) > 0
    # the loss column is the run's own per-epoch loss (what the checkpoint keeps)
    losses = [loss for step in result.trained_method.losses_per_epoch for loss in step]
    assert [float(r["loss"]) for r in rows] == losses
    # warm-up: the first epoch's mean rate is below the second's (cosine's first is its peak)
    assert float(rows[0]["lr"]) < float(rows[1]["lr"])


def test_accuracy_matrix_csv_and_heatmap(logged_run):
    out, result, _ = logged_run
    rows = read_csv(out / "accuracy_matrix.csv")
    agnostic = [r for r in rows if r["kind"] == "task_agnostic"]
    aware = [r for r in rows if r["kind"] == "task_aware"]
    assert len(agnostic) == len(aware) == 3
    for t, row in enumerate(agnostic):
        assert [float(row[f"step_{j}"]) for j in range(t + 1)] == result.main.matrix[t]
        assert all(row[f"step_{j}"] == "" for j in range(t + 1, 3))
    assert (out / "matrix.png").read_bytes()[:4] == b"\x89PNG"
    data = json.loads((out / "results.json").read_text())
    assert data["epochs"] == result.epochs and len(data["epochs"]) == 9


def test_confusion_matrix_of_the_last_step(logged_run, digits):
    out, result, _ = logged_run
    rows = read_csv(out / "confusion.csv")
    order = result.class_order
    assert [r["true_class"] for r in rows] == [str(c) for c in order]
    counts = np.array([[int(r[str(c)]) for c in order] + [int(r["none"])] for r in rows])
    per_class = [int(np.sum(digits.y_test == c)) for c in order]
    assert counts.sum(axis=1).tolist() == per_class
    assert np.trace(counts) / counts.sum() == pytest.approx(result.main.acc_seen[-1], abs=1e-12)


def test_top5_and_task_aware_against_plain_loops(rng):
    scores = rng.standard_normal((300, 9))
    y = rng.integers(0, 9, 300)
    groups = [np.array([0, 1, 2]), np.array([3, 4, 5, 6]), np.array([7, 8])]
    top5 = np.mean([y[i] in np.argsort(-scores[i])[:5] for i in range(300)])
    assert top_k_accuracy(y, scores, 5) == top5
    try:
        import torch
        assert top_k_accuracy(y, scores, 5) == float(
            (torch.topk(torch.tensor(scores), 5).indices == torch.tensor(y)[:, None]).any(1).double().mean())
    except ImportError:
        pass
    aware = []
    for i in range(300):
        group = next(g for g in groups if y[i] in g)
        aware.append(group[int(np.argmax(scores[i, group]))])
    np.testing.assert_array_equal(task_aware_predictions(y, scores, groups), aware)
    assert np.mean(np.array(aware) == y) > np.mean(scores.argmax(1) == y)  # the step given helps
    pred = scores.argmax(1)
    pred[:7] = -1  # no class
    matrix = confusion_matrix(y, pred, 9)
    expected = np.zeros((9, 10), int)
    for t, p in zip(y, pred):
        expected[t, p if p >= 0 else 9] += 1
    np.testing.assert_array_equal(matrix, expected)


def test_history_records_top5_only_past_five_classes(rng):
    history = ClassifierHistory()
    y = np.array([0, 1, 2, 3])
    history.record(y, y, [np.arange(4)], rng.standard_normal((4, 4)))
    assert np.isnan(history.acc_top5[-1]) and "last_top5_accuracy" not in history.metrics()
    y = np.arange(8)
    scores = np.eye(8)
    history.record(y, y, [np.arange(4), np.arange(4, 8)], scores)
    assert history.acc_top5[-1] == 1.0 and history.metrics()["last_top5_accuracy"] == 1.0
    assert history.metrics()["last_accuracy_task_aware"] == 1.0
    back = ClassifierHistory.from_dict(json.loads(json.dumps(history.to_dict())))
    assert np.isnan(back.acc_top5[0]) and back.acc_top5[1] == 1.0 and back.confusion == history.confusion


def test_nme_scores_argmax_is_the_nme_prediction(digits):
    config = ExperimentConfig(method="icarl", epochs=1, initial=6, increment=4)
    result = run_experiment(config, digits)
    method = result.trained_method
    x = digits.to_input(digits.x_test)
    scores = method.scores(x, "nme")
    assert scores.shape == (len(x), 10)
    np.testing.assert_array_equal(scores.argmax(1), method.predict(x, "nme"))
    assert "last_top5_accuracy" in result.metrics()["nme"]
    assert result.metrics()["nme"]["last_top5_accuracy"] >= result.metrics()["nme"]["last_accuracy"]


def test_a_resumed_run_logs_what_the_uninterrupted_one_does(logged_run, tmp_path, digits):
    out, result, _ = logged_run
    run_experiment(resume=out / "checkpoints" / "step-001.ckpt",
                   config={"output_dir": str(tmp_path / "resumed")}, dataset=digits)
    whole, resumed = read_csv(out / "log.csv"), read_csv(tmp_path / "resumed" / "log.csv")
    drop = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]  # noqa: E731
    assert drop(resumed) == drop(whole)


# -- TensorBoard ---------------------------------------------------------------------

def read_events(folder):
    """Every scalar and image in the event files of ``folder``, read with the
    TFRecord framing (length, CRC, payload, CRC) and the Event protobuf."""
    event_pb2 = pytest.importorskip("tensorboardX.proto.event_pb2")
    scalars, images = {}, []
    for path in sorted(folder.glob("events.out.tfevents.*")):
        data = path.read_bytes()
        pos = 0
        while pos < len(data):
            (length,) = struct.unpack("<Q", data[pos:pos + 8])
            event = event_pb2.Event.FromString(data[pos + 12:pos + 12 + length])
            pos += 12 + length + 4
            for value in event.summary.value:
                if value.HasField("image"):
                    images.append(value.tag)
                else:
                    scalars.setdefault(value.tag, []).append((event.step, value.simple_value))
    return scalars, images


def test_tensorboard_events_hold_the_log(tmp_path, digits):
    pytest.importorskip("tensorboardX")
    out = tmp_path / "run"
    result = run_experiment(ExperimentConfig(method="lwf", epochs=2, initial=5, increment=5, output_dir=str(out),
                                             tensorboard=True), digits)
    scalars, images = read_events(out / "tensorboard")
    rows = read_csv(out / "log.csv")
    assert [step for step, _ in scalars["loss/total"]] == list(range(1, len(rows) + 1))
    np.testing.assert_allclose([v for _, v in scalars["loss/total"]], [float(r["loss"]) for r in rows], rtol=1e-6)
    np.testing.assert_allclose([v for _, v in scalars["loss/distillation"]],
                               [float(r["distillation"]) for r in rows if r["distillation"]], rtol=1e-6)
    np.testing.assert_allclose([v for _, v in scalars["lr"]], [float(r["lr"]) for r in rows], rtol=1e-6)
    np.testing.assert_allclose([v for _, v in scalars["accuracy/head/seen"]], result.main.acc_seen, rtol=1e-6)
    assert [s for s, _ in scalars["accuracy/head/seen"]] == [2, 4]  # at the epochs trained so far
    np.testing.assert_allclose([v for _, v in scalars["accuracy/head/task_aware"]],
                               result.main.acc_seen_task_aware, rtol=1e-6)
    assert scalars["matrix/head/step_0"][-1][1] == pytest.approx(result.main.matrix[-1][0], rel=1e-6)
    assert images == ["accuracy_matrix"]


def test_tensorboard_without_tensorboardx_is_refused_before_the_run(tmp_path, digits, monkeypatch):
    import builtins
    real_import = builtins.__import__

    def no_tensorboardx(name, *args, **kwargs):
        if name.startswith("tensorboardX"):
            raise ImportError("No module named 'tensorboardX'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_tensorboardx)
    from aidge_incremental.options import ConfigError
    with pytest.raises(ConfigError, match=r"tensorboardX.*pip install tensorboardX"):
        run_experiment(ExperimentConfig(epochs=1, output_dir=str(tmp_path / "x"), tensorboard=True), digits)
    assert not (tmp_path / "x").exists()


def test_tensorboard_module_is_not_imported_unless_asked():
    import subprocess
    import sys
    code = ("import sys, aidge_incremental.experiment, aidge_incremental.cli; "
            "print('tensorboardX' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
