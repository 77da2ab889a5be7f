"""Digests of exports (export/manifest.py) and the checks predict makes before serving:
sidecars in sha256sum format that survive a rename, special files and hostile JSON
refused before any read, ONNX metadata checked against the graph."""
import json
import os
import pathlib
import shutil
import subprocess
import sys
import textwrap

import onnx
import pytest

from aidge_incremental.cli import main
from aidge_incremental.export import IntegrityError, check_sidecar, export_model
from aidge_incremental.export.manifest import sha256_file, write_sidecar

ROOT = pathlib.Path(__file__).resolve().parents[2]


def predict_in_subprocess(args, timeout=60):
    """``predict`` in a fresh interpreter, under a 1 GiB address-space margin: a hang
    or an endless read shows as a timeout or a MemoryError there, not here."""
    code = textwrap.dedent(f"""
        import resource, sys
        from aidge_incremental.cli import main
        used = int(open("/proc/self/status").read().split("VmSize:")[1].split()[0]) * 1024
        resource.setrlimit(resource.RLIMIT_AS, (used + (1 << 30), resource.RLIM_INFINITY))
        sys.exit(main({args!r}))
    """)
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    try:
        return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout,
                              env=env, cwd=ROOT)
    except subprocess.TimeoutExpired:
        pytest.fail(f"predict {args} did not return within {timeout} s (it waits on a special file)")


def copy_export(onnx_run, tmp_path, name="model.onnx"):
    folder, _ = onnx_run
    path = tmp_path / name
    shutil.copy(folder / "step-001.onnx", path)
    shutil.copy(folder / "step-001.onnx.sha256", tmp_path / (name + ".sha256"))
    return path


# -- the sidecar format ---------------------------------------------------------------------

def test_sidecars_are_in_sha256sum_format(onnx_run):
    folder, _ = onnx_run
    text = (folder / "step-001.onnx.sha256").read_text()
    assert text == f"{sha256_file(folder / 'step-001.onnx')}  step-001.onnx\n"
    if shutil.which("sha256sum"):
        done = subprocess.run(["sha256sum", "-c", "step-001.onnx.sha256", "step-001-nme.onnx.sha256"],
                              cwd=folder, capture_output=True, text=True)
        assert done.returncode == 0, done.stdout + done.stderr


def test_a_renamed_export_with_its_renamed_sidecar_is_served_with_a_note(onnx_run, tmp_path, capsys):
    path = copy_export(onnx_run, tmp_path, "renamed.onnx")  # sidecar renamed along, naming step-001.onnx
    assert main(["predict", str(path), "--count", "3"]) == 0
    captured = capsys.readouterr()
    assert "predicted:" in captured.out
    assert "step-001.onnx" in captured.err and "renamed" in captured.err
    # the digest is what is checked: a flipped byte is refused whatever the names
    data = bytearray(path.read_bytes())
    data[200] ^= 1
    path.write_bytes(bytes(data))
    assert main(["predict", str(path), "--count", "3"]) == 2
    assert "does not match its SHA-256 digest" in capsys.readouterr().err


def test_json_sidecars_of_earlier_exports_are_still_checked(onnx_run, tmp_path, capsys):
    path = copy_export(onnx_run, tmp_path)
    record = {"format": "aidge_incremental-export/1", "file": "model.onnx", "size": path.stat().st_size,
              "sha256": sha256_file(path)}
    (tmp_path / "model.onnx.sha256").write_text(json.dumps(record))
    check_sidecar(path)
    assert main(["predict", str(path), "--count", "3"]) == 0
    record["sha256"] = "0" * 64
    (tmp_path / "model.onnx.sha256").write_text(json.dumps(record))
    with pytest.raises(IntegrityError, match="does not match its SHA-256 digest"):
        check_sidecar(path)


@pytest.mark.parametrize("content,message", [
    ("[" * 50_000, "not a SHA-256 digest"),           # before: a RecursionError traceback
    ('{"a": ' * 10_000, "unreadable"),                  # the same in an old JSON sidecar
    ("", "not a SHA-256 digest"),
    ("zz  model.onnx\n", "not a SHA-256 digest"),
    (f"{'a' * 64}  model.onnx\n{'b' * 64}  other.onnx\n", "one line"),
    ("x" * (1 << 21), "more than"),
])
def test_hostile_sidecars_are_refused_naming_the_file(onnx_run, tmp_path, capsys, content, message):
    path = copy_export(onnx_run, tmp_path)
    (tmp_path / "model.onnx.sha256").write_text(content)
    assert main(["predict", str(path), "--count", "3"]) == 2
    err = capsys.readouterr().err
    assert "model.onnx.sha256" in err and message in err, err


def test_write_sidecar_escapes_names_as_sha256sum_does(tmp_path):
    path = tmp_path / "odd\\name.onnx"
    path.write_bytes(b"data")
    side = write_sidecar(path)
    assert side.read_text().startswith("\\") and "odd\\\\name.onnx" in side.read_text()
    check_sidecar(path)
    if shutil.which("sha256sum"):
        assert subprocess.run(["sha256sum", "-c", side.name], cwd=tmp_path, capture_output=True).returncode == 0


# -- special files: never waited on, never read without end -------------------------------------

@pytest.mark.parametrize("what", ["sidecar fifo", "sidecar to /dev/zero", "manifest fifo", "manifest to /dev/zero"])
def test_special_digest_files_are_refused_before_any_read(onnx_run, fake_cpp_export, tmp_path, what):
    """Before: a FIFO as sidecar or MANIFEST.json blocked predict forever; a sidecar linking
    to /dev/zero was read until memory ran out."""
    if what.endswith("/dev/zero") and not os.path.exists("/dev/zero"):
        pytest.skip("no /dev/zero")
    if what.startswith("sidecar"):
        target = copy_export(onnx_run, tmp_path)
        special = tmp_path / "model.onnx.sha256"
    else:
        target, _ = fake_cpp_export()
        special = target / "MANIFEST.json"
    special.unlink()
    if what.endswith("fifo"):
        os.mkfifo(special)
    else:
        special.symlink_to("/dev/zero")
    done = predict_in_subprocess(["predict", str(target), "--count", "2"])
    assert done.returncode == 2, done.stderr[-2000:]
    assert "not a regular file" in done.stderr and special.name in done.stderr


def test_a_manifest_entry_that_is_a_fifo_or_a_link_is_refused(fake_cpp_export, tmp_path):
    from aidge_incremental.export.manifest import check_manifest
    folder, _ = fake_cpp_export()
    (folder / "budget.json").unlink()
    os.mkfifo(folder / "budget.json")
    with pytest.raises(IntegrityError, match=r"budget\.json.*not a regular file"):
        check_manifest(folder)
    folder, _ = fake_cpp_export()
    (folder / "budget.json").unlink()
    (folder / "budget.json").symlink_to(folder / "export.json")
    with pytest.raises(IntegrityError, match=r"budget\.json.*link"):
        check_manifest(folder)


# -- ONNX: metadata against the graph; labels against outputs --------------------------------------

def test_onnx_metadata_is_checked_against_the_graphs_outputs(onnx_run, tmp_path, capsys):
    """Before: predict mapped the argmax through the metadata's class list whatever its
    length: 12 labels for 10 logits were served."""
    path = copy_export(onnx_run, tmp_path)
    model = onnx.load(str(path))
    for prop in model.metadata_props:
        if prop.key == "aidge_incremental.classes":
            prop.value = json.dumps(list(range(12)))
    path.write_bytes(model.SerializeToString())
    write_sidecar(path)
    assert main(["predict", str(path), "--count", "3"]) == 2
    err = capsys.readouterr().err
    assert "12 classes" in err and "10" in err


def test_export_model_refuses_a_class_order_that_does_not_cover_the_outputs(onnx_run, tmp_path):
    """Before: export_model(model, path, [0]) wrote a 10-output model with one label."""
    _, result = onnx_run
    model = result.trained_method.model
    for order, message in (([0], "1 labels for the 10 outputs"), ([0, 1, 2, 3, 4, 5, 6, 7, 8, 8], "distinct"),
                           (["a"] * 10, "integers")):
        with pytest.raises(ValueError, match=message):
            export_model(model, tmp_path / "m.onnx", order)
    assert not (tmp_path / "m.onnx").exists()


def test_manifest_entries_stay_inside_the_folder(fake_cpp_export, tmp_path):
    from aidge_incremental.export.manifest import MANIFEST, check_manifest
    folder, _ = fake_cpp_export()
    entries = json.loads((folder / MANIFEST).read_text())
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "budget.json").write_text((folder / "budget.json").read_text())
    # a directory of the export swapped for a link to elsewhere: its files are not the export's
    shutil.move(folder / "model", tmp_path / "model-elsewhere")
    (folder / "model").symlink_to(tmp_path / "model-elsewhere")
    with pytest.raises(IntegrityError, match="invalid entry 'model/"):
        check_manifest(folder)
    for rel in ("../outside/budget.json", "/etc/passwd", "model//x", "./budget.json"):
        bad = dict(entries, files={rel: {"size": 1, "sha256": "0" * 64}})
        (folder / MANIFEST).write_text(json.dumps(bad))
        with pytest.raises(IntegrityError, match="invalid entry"):
            check_manifest(folder)
    huge = dict(entries, files={f"f{i}": {"size": 1 << 40, "sha256": "0" * 64} for i in range(20)})
    (folder / MANIFEST).write_text(json.dumps(huge))
    with pytest.raises(IntegrityError, match="more than"):
        check_manifest(folder)


def test_an_onnx_file_with_external_data_is_not_served(onnx_run, tmp_path, capsys, monkeypatch):
    """Before: weights read from an external file beside it, which no digest covers,
    changed what predict answered."""
    from onnx.external_data_helper import convert_model_to_external_data
    model = onnx.load(str(copy_export(onnx_run, tmp_path)))
    convert_model_to_external_data(model, all_tensors_to_one_file=True, location="secret.bin", size_threshold=0)
    crafted = tmp_path / "crafted.onnx"
    onnx.save_model(model, str(crafted))  # writes crafted.onnx and secret.bin beside it
    write_sidecar(crafted)
    monkeypatch.chdir(tmp_path)
    assert main(["predict", str(crafted), "--count", "4"]) == 2
    assert "external files (secret.bin)" in capsys.readouterr().err
