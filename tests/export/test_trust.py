"""Running an exported binary is an explicit act (export/trust.py, targets.py):
``predict`` runs a C++ export's binary only when this project built it on this
machine (its SHA-256 recorded outside the folder) or with --trust-binary; the
MANIFEST must list every file read or run; export.json is checked against the
binary's own description."""
import json
import os
import shutil

import numpy as np
import pytest

from aidge_incremental.cli import main
from aidge_incremental.datasets import load_digits


def predicted(out: str) -> list:
    line = next(l for l in out.splitlines() if l.startswith("predicted:"))
    return [int(v) for v in line.split()[1:]]


def test_predict_does_not_run_a_binary_it_did_not_build(fake_cpp_export, capsys):
    """Before: ``predict FOLDER`` executed FOLDER/model/run_export, an unsigned digest
    being all that stood between a received folder and running its code."""
    folder, marker = fake_cpp_export()
    assert main(["predict", str(folder), "--count", "3"]) == 2
    err = capsys.readouterr().err
    assert not marker.exists(), "the binary ran"
    assert "run_export" in err and "--trust-binary" in err and f"export --rebuild {folder}" in err


def test_trust_binary_runs_it_and_the_labels_are_the_binarys(fake_cpp_export, capsys):
    folder, marker = fake_cpp_export()
    assert main(["predict", str(folder), "--count", "6", "--trust-binary"]) == 0
    assert marker.exists()
    digits = load_digits()
    expected = digits.x_test[:6].reshape(6, -1).astype(np.float64).sum(1).astype(np.int64) % 10
    assert predicted(capsys.readouterr().out) == expected.tolist()


def test_a_binary_recorded_as_built_here_runs_without_the_flag(fake_cpp_export, capsys):
    from aidge_incremental.export.trust import record_built_binary
    folder, marker = fake_cpp_export()
    record_built_binary(folder / "model" / "run_export")
    assert main(["predict", str(folder), "--count", "3"]) == 0
    assert marker.exists()


def test_a_recorded_binary_swapped_after_the_check_is_not_run(fake_cpp_export, tmp_path, capsys):
    """What runs is the private copy whose digest was checked, not the path."""
    from aidge_incremental.export import trust
    folder, marker = fake_cpp_export()
    trust.record_built_binary(folder / "model" / "run_export")
    evil = tmp_path / "evil-ran"
    real_copy = trust.private_copy

    def copy_then_swap(path, *args, **kwargs):
        copied = real_copy(path, *args, **kwargs)
        path.write_text(f"#!/bin/sh\ntouch {evil}\n")  # the folder's file changes after the copy
        return copied
    trust.private_copy = copy_then_swap
    try:
        assert main(["predict", str(folder), "--count", "3"]) == 0
    finally:
        trust.private_copy = real_copy
    assert marker.exists() and not evil.exists()


def test_the_manifest_must_list_every_file_read_or_run(fake_cpp_export, capsys):
    for skipped in ("model/run_export", "export.json", "model/aidge_incremental.json"):
        folder, marker = fake_cpp_export(manifest_skip=(skipped,))
        assert main(["predict", str(folder), "--count", "3", "--trust-binary"]) == 2
        err = capsys.readouterr().err
        assert f"does not list {skipped}" in err, err
        assert not marker.exists()


def test_export_json_is_checked_against_the_binarys_description(fake_cpp_export, capsys):
    """Before: predict trusted export.json's dtype: an int8 model inside a float export was
    fed float samples and served (the issue measured 15 % accuracy)."""
    folder, marker = fake_cpp_export(export_dtype="float32", binary_ctype="int8_t")
    assert main(["predict", str(folder), "--count", "3", "--trust-binary"]) == 2
    err = capsys.readouterr().err
    assert "float32" in err and "int8" in err and "aidge_incremental.json" in err
    assert not marker.exists()
    folder, marker = fake_cpp_export(classes=list(range(12)))  # 12 labels for 10 outputs
    assert main(["predict", str(folder), "--count", "3", "--trust-binary"]) == 2
    assert "12 classes" in capsys.readouterr().err and not marker.exists()


def test_the_trust_record_is_kept_outside_the_folder_and_written_atomically(fake_cpp_export, tmp_path):
    from aidge_incremental.export import trust
    folder, _ = fake_cpp_export()
    record = trust.record_built_binary(folder / "model" / "run_export")
    store = trust.trust_store_path()
    assert str(store).startswith(os.environ["XDG_STATE_HOME"])
    assert folder not in store.parents
    data = json.loads(store.read_text())
    entry = data["binaries"][record]
    assert entry["path"] == str((folder / "model" / "run_export").resolve())
    assert (store.parent.stat().st_mode & 0o777) == 0o700
    # a copy of the folder elsewhere holds the same binary: still the one built here
    shutil.copytree(folder, tmp_path / "moved")
    assert trust.is_built_here(trust.sha256_of(tmp_path / "moved" / "model" / "run_export"))


@pytest.mark.parametrize("content", ["{", "[]", '{"format": 1, "binaries": []}', "[" * 100000])
def test_a_damaged_trust_store_trusts_nothing_and_says_so(fake_cpp_export, content, capsys, tmp_path,
                                                           monkeypatch):
    from aidge_incremental.export import trust
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "own-state"))
    folder, marker = fake_cpp_export()
    trust.trust_store_path().parent.mkdir(parents=True, exist_ok=True)
    trust.trust_store_path().write_text(content)
    assert main(["predict", str(folder), "--count", "3"]) == 2
    assert "trusted_binaries.json" in capsys.readouterr().err and not marker.exists()
