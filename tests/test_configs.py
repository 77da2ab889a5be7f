"""The shipped reference configurations, configuration files as untrusted
input, and the CIFAR/MNIST loaders on small generated archives in the real
formats."""
import gzip
import io
import json
import os
import pathlib
import pickle
import struct
import tarfile

import numpy as np
import pytest

from aidge_incremental.cli import main
from aidge_incremental.datasets import load_cifar, load_dataset
from aidge_incremental.experiment import ExperimentConfig
from aidge_incremental.models import ARCHITECTURES
from aidge_incremental.options import ConfigError, MAX_CONFIG_NODES, load_config_file

CONFIGS = pathlib.Path(__file__).resolve().parent.parent / "examples" / "configs"
SHIPPED = sorted(CONFIGS.glob("*.yaml"))


def test_configs_are_shipped():
    names = {p.name for p in SHIPPED}
    assert {"digits_icarl.yaml", "mnist_icarl.yaml", "cifar100_icarl_b0_10steps.yaml",
            "cifar100_icarl_b0_20steps.yaml", "cifar100_icarl_b0_50steps.yaml",
            "cifar100_icarl_pycil_b0_10steps.yaml", "cifar100_lwf_pycil_b0_10steps.yaml"} <= names
    assert any("b50" in n for n in names)


@pytest.mark.parametrize("path", SHIPPED, ids=[p.name for p in SHIPPED])
def test_every_shipped_config_parses_validates_and_cites_its_source(path):
    assert path.read_text().startswith("# "), "a header comment says where the numbers come from"
    values = load_config_file(path)
    # everything but the model name validates on this branch
    config = ExperimentConfig.from_dict({**values, "model": "mlp"})
    assert config.method == values["method"]
    if values.get("model", "mlp") not in ARCHITECTURES:
        pytest.skip(f"model {values['model']!r} is not registered in ARCHITECTURES on this branch "
                    f"(known: {sorted(ARCHITECTURES)})")
    ExperimentConfig.from_dict(values)


@pytest.mark.parametrize("path", [p for p in SHIPPED if p.name.startswith("cifar100")],
                         ids=lambda p: p.name)
def test_cifar_configs_use_the_seed_1993_class_order(path):
    values = load_config_file(path)
    # iCaRL's and PyCIL's order: np.random.seed(1993); np.random.permutation(100)
    assert values["class_order"] == np.random.RandomState(1993).permutation(100).tolist()
    assert values["batch_size"] == 128 and values["momentum"] == 0.9


def test_icarl_paper_protocol_numbers():
    values = load_config_file(CONFIGS / "cifar100_icarl_b0_10steps.yaml")
    assert (values["epochs"], values["lr"], values["milestones"], values["lr_factor"],
            values["weight_decay"], values["memory"]) == (70, 2.0, [49, 63], 0.2, 1e-5, 2000)
    for steps in (10, 20, 50):
        v = load_config_file(CONFIGS / f"cifar100_icarl_b0_{steps}steps.yaml")
        assert v["initial"] == v["increment"] == 100 // steps


@pytest.mark.parametrize("name", ["digits_icarl.yaml", "digits_lwf.yaml"])
def test_run_config_works_for_the_digits_configs(tmp_path, name):
    out = tmp_path / "out"
    assert main(["run", "--config", str(CONFIGS / name), "--epochs", "1", "--output-dir", str(out),
                 "--no-progress"]) == 0
    data = json.loads((out / "results.json").read_text())
    assert data["config"]["epochs"] == 1  # the command line wins over the file
    assert data["method"] == load_config_file(CONFIGS / name)["method"]
    assert len(data["classes_seen"]) == 5


def _write_idx(path, array):
    dtype_code = {np.uint8: 0x08}[array.dtype.type]
    header = bytes([0, 0, dtype_code, array.ndim]) + b"".join(struct.pack(">I", d) for d in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.tobytes())


def test_run_config_works_for_the_mnist_config(tmp_path, rng):
    folder = tmp_path / "mnist"
    folder.mkdir()
    labels = np.repeat(np.arange(10, dtype=np.uint8), 12)
    images = (rng.random((len(labels), 28, 28)) * 40).astype(np.uint8)
    images[np.arange(len(labels)), labels * 2, :] = 255  # a learnable stripe per class
    _write_idx(folder / "t10k-images-idx3-ubyte.gz", images)
    _write_idx(folder / "t10k-labels-idx1-ubyte.gz", labels)
    out = tmp_path / "out"
    assert main(["run", "--config", str(CONFIGS / "mnist_icarl.yaml"), "--data-dir", str(folder),
                 "--epochs", "1", "--hidden", "16", "--memory", "20", "--output-dir", str(out),
                 "--no-progress"]) == 0
    data = json.loads((out / "results.json").read_text())
    assert "t10k only" in data["dataset_note"]


# -- CIFAR archives in the real pickle layout ------------------------------------

def _cifar_rows(labels, rng):
    """[N, 3072] uint8 rows (R plane, G plane, B plane, each row-major 32x32) whose
    pixel (c, y, x) is a known function of the label, channel and position."""
    n = len(labels)
    c, y, x = np.meshgrid(np.arange(3), np.arange(32), np.arange(32), indexing="ij")
    base = (c * 80 + (y + x) % 7).astype(np.int64)
    rows = (base[None] + labels[:, None, None, None] % 5 * 3 + rng.integers(0, 2, (n, 1, 1, 1))) % 256
    return rows.reshape(n, 3072).astype(np.uint8)


def write_cifar_archive(directory, n_classes, per_class_train, per_class_test, rng):
    """A ``cifar-10-python.tar.gz`` / ``cifar-100-python.tar.gz`` holding pickled
    dicts with b"data" uint8 [N, 3072] and b"labels" / b"fine_labels", like the real one."""
    folder, key = ("cifar-10-batches-py", b"labels") if n_classes == 10 else ("cifar-100-python", b"fine_labels")
    train_y = np.repeat(np.arange(n_classes), per_class_train)
    test_y = np.repeat(np.arange(n_classes), per_class_test)
    if n_classes == 10:
        parts = np.array_split(rng.permutation(len(train_y)), 5)
        members = {f"data_batch_{i + 1}": train_y[p] for i, p in enumerate(parts)}
        members["test_batch"] = test_y
    else:
        members = {"train": train_y, "test": test_y}
    path = pathlib.Path(directory) / ("cifar-10-python.tar.gz" if n_classes == 10 else "cifar-100-python.tar.gz")
    with tarfile.open(path, "w:gz") as tar:
        for name, labels in members.items():
            record = {b"data": _cifar_rows(labels, rng), key: labels.tolist(), b"batch_label": name.encode()}
            if n_classes == 100:
                record[b"coarse_labels"] = (labels // 5).tolist()
            blob = pickle.dumps(record, protocol=2)
            info = tarfile.TarInfo(f"{folder}/{name}")
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
    return path, members


@pytest.mark.parametrize("n_classes", [10, 100])
def test_cifar_loader_reads_the_channel_planes(tmp_path, rng, n_classes):
    path, members = write_cifar_archive(tmp_path, n_classes, 3, 1, np.random.default_rng(0))
    dataset = load_cifar(path, n_classes)
    assert dataset.x_train.shape == (3 * n_classes, 3, 32, 32) and dataset.x_train.dtype == np.uint8
    assert dataset.max_value == 255.0
    # the channel planes: channel c of every image is c*80 + ((y+x) % 7) + label-dependent offset (+0/1)
    y_pos, x_pos = np.meshgrid(np.arange(32), np.arange(32), indexing="ij")
    for c in range(3):
        expected = c * 80 + (y_pos + x_pos) % 7 + (dataset.y_train[:, None, None] % 5) * 3
        diff = dataset.x_train[:, c].astype(int) - expected
        assert diff.min() >= 0 and diff.max() <= 1
    train_labels = np.concatenate([members[k] for k in members if k not in ("test", "test_batch")])
    assert sorted(dataset.y_train.tolist()) == sorted(train_labels.tolist())


def test_the_cifar_protocol_runs_on_a_generated_archive(tmp_path):
    path, _ = write_cifar_archive(tmp_path, 100, 4, 2, np.random.default_rng(1))
    out = tmp_path / "out"
    # the paper's protocol, shrunk: 2 epochs (lr /5 after the first), a small model
    assert main(["run", "--config", str(CONFIGS / "cifar100_icarl_b0_10steps.yaml"), "--data-dir", str(path),
                 "--model", "mlp", "--hidden", "64", "--epochs", "2",
                 "--milestones", "1", "--lr", "0.001", "--memory", "200", "--output-dir", str(out),
                 "--no-progress"]) == 0
    data = json.loads((out / "results.json").read_text())
    assert data["class_order"] == np.random.RandomState(1993).permutation(100).tolist()
    assert len(data["classes_seen"]) == 10 and data["classes_seen"][-1] == 100


CIFAR100 = os.environ.get("AIDGE_INCREMENTAL_CIFAR100", "data/cifar-100-python.tar.gz")


@pytest.mark.parametrize("path", [p for p in SHIPPED if p.name.startswith("cifar100")], ids=lambda p: p.name)
def test_real_cifar_protocols_when_the_archive_is_present(path):
    """With the real archive (AIDGE_INCREMENTAL_CIFAR100 or data/), the protocol's
    scenario is built on it; skipped cleanly otherwise (no download here)."""
    if not pathlib.Path(CIFAR100).exists():
        pytest.skip(f"CIFAR-100 archive not found at {CIFAR100} (set AIDGE_INCREMENTAL_CIFAR100)")
    from aidge_incremental.scenario import ClassIncrementalScenario
    values = load_config_file(path)
    dataset = load_dataset("cifar100", CIFAR100)
    assert dataset.x_train.shape == (50000, 3, 32, 32)
    scenario = ClassIncrementalScenario(dataset, values["initial"], values["increment"], values["class_order"])
    assert scenario.n_steps == 1 + (100 - values["initial"]) // values["increment"]


# -- configuration files are untrusted input -----------------------------------------

def test_yaml_aliases_cannot_expand_past_the_bound(tmp_path):
    levels = ["a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]"]
    for i, name in enumerate("bcdefgh"):
        prev = "abcdefgh"[i]
        levels.append(f"{name}: &{name} [{', '.join(['*' + prev] * 10)}]")
    levels.append(f"class_order: [{', '.join(['*h'] * 10)}]")
    text = "\n".join(levels) + "\n"
    path = tmp_path / "laughs.yaml"
    path.write_text(text)
    assert len(text.encode()) < 700  # a few hundred bytes that stand for 10^9 integers
    with pytest.raises(ConfigError, match=f"laughs.yaml expands to more than {MAX_CONFIG_NODES}"):
        load_config_file(path)
    # a recursive alias
    path.write_text("a: &a [*a]\n")
    with pytest.raises(ConfigError, match="refers to itself|invalid YAML"):
        load_config_file(path)
    # a sane use of aliases is fine
    path.write_text("h: &h [64, 32]\nhidden: *h\n")
    assert load_config_file(path)["hidden"] == [64, 32]


def test_config_files_are_bounded_and_named_in_errors(tmp_path):
    big = tmp_path / "big.json"
    big.write_bytes(b"{" + b" " * (2 << 20) + b"}")
    with pytest.raises(ConfigError, match="big.json has .* bytes"):
        load_config_file(big)
    with pytest.raises(ConfigError, match="cannot read config file .*missing.yaml"):
        load_config_file(tmp_path / "missing.yaml")
    binary = tmp_path / "bin.yaml"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ConfigError, match="bin.yaml is not UTF-8"):
        load_config_file(binary)
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ConfigError, match="deep.json"):
        load_config_file(deep)
    dashed = tmp_path / "dashed.yaml"
    dashed.write_text("batch-size: 32\n")
    assert load_config_file(dashed) == {"batch_size": 32}
