"""Files we are handed and files we create (files.py): readers that allocate what they
read, never the bound; special files refused before any read; a decompression ratio
limit; nothing created in a user's directory through a planted link."""
import gzip
import io
import os
import pathlib
import pickle
import stat
import subprocess
import sys
import tarfile
import textwrap

import numpy as np
import pytest

from aidge_incremental import files
from aidge_incremental.files import atomic_write, read_bounded, read_bounded_stream

ROOT = pathlib.Path(__file__).resolve().parents[1]


def run_python(code: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """``code`` in a fresh interpreter importing this tree (a hang or an allocation
    limit stays in that process)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
               OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=ROOT)


def write_small_datasets(folder: pathlib.Path) -> None:
    """A 2 kB-scale CIFAR-10 folder and archive, gzipped MNIST IDX files and a .npz."""
    rng = np.random.default_rng(0)
    cifar = folder / "cifar-10-batches-py"
    cifar.mkdir()
    blobs = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        blobs[name] = pickle.dumps({b"data": rng.integers(0, 255, (2, 3072), dtype=np.uint8),
                                    b"labels": [0, 1]}, protocol=2)
        (cifar / name).write_bytes(blobs[name])
    with tarfile.open(folder / "cifar-10-python.tar.gz", "w:gz") as tar:
        for name, blob in blobs.items():
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
    mnist = folder / "mnist"
    mnist.mkdir()
    images = rng.integers(0, 255, (40, 28, 28), dtype=np.uint8)
    labels = (np.arange(40) % 10).astype(np.uint8)
    for stem, array, code in (("t10k-images-idx3-ubyte", images, 3), ("t10k-labels-idx1-ubyte", labels, 1)):
        header = bytes([0, 0, 0x08, code]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
        (mnist / f"{stem}.gz").write_bytes(gzip.compress(header + array.tobytes()))
    np.savez_compressed(folder / "arrays.npz", x_train=images, y_train=labels)


# -- memory: a reader allocates what it reads, not the bound ------------------------------

def test_every_dataset_reader_works_under_a_3_gb_address_space_limit(tmp_path):
    """Before: read_bounded called f.read(4 GiB + 1), so under ``ulimit -v`` ~ 3 GB
    a 2 kB CIFAR archive failed with a bare MemoryError."""
    write_small_datasets(tmp_path)
    done = run_python(f"""
        import pathlib, resource
        from aidge_incremental.datasets.cifar import load_cifar
        from aidge_incremental.datasets.mnist import load_mnist
        from aidge_incremental.datasets.npz import load_npz
        from aidge_incremental.files import read_bounded
        folder = pathlib.Path({str(tmp_path)!r})
        status = open("/proc/self/status").read()
        used = int(status.split("VmSize:")[1].split()[0]) * 1024
        # what this process has mapped, plus 1 GiB: far below the 4 GiB bound
        resource.setrlimit(resource.RLIMIT_AS, (used + (1 << 30), resource.RLIM_INFINITY))
        assert len(read_bounded(folder / "arrays.npz", "file")) > 0
        print(len(load_cifar(folder / "cifar-10-batches-py").y_train),
              len(load_cifar(folder / "cifar-10-python.tar.gz").y_train),
              len(load_mnist(folder / "mnist").y_train) + len(load_mnist(folder / "mnist").y_test),
              len(load_npz(folder / "arrays.npz").y_train))
    """)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split() == ["10", "10", "40", "30"]


def test_a_gzip_bomb_is_refused_by_its_ratio_before_it_expands(tmp_path):
    """Before: a gzip that expands 1000x was decompressed up to the 4 GiB bound
    (the issue measured 2.2 GB of RSS for a 1 MB bomb)."""
    mnist = tmp_path / "mnist"
    mnist.mkdir()
    n = 250_000  # 250 000 zero images of 28x28: 196 MB that gzip stores in ~190 kB
    header = bytes([0, 0, 0x08, 3]) + b"".join(d.to_bytes(4, "big") for d in (n, 28, 28))
    with gzip.open(mnist / "t10k-images-idx3-ubyte.gz", "wb", compresslevel=9) as f:
        f.write(header)
        zeros = bytes(28 * 28 * 1000)
        for _ in range(n // 1000):
            f.write(zeros)
    labels = bytes([0, 0, 0x08, 1]) + n.to_bytes(4, "big") + bytes(n)
    (mnist / "t10k-labels-idx1-ubyte").write_bytes(labels)
    done = run_python(f"""
        import resource
        from aidge_incremental.datasets.base import DatasetError
        from aidge_incremental.datasets.mnist import load_mnist
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        try:
            load_mnist({str(mnist)!r})
        except DatasetError as e:
            print("refused:", e)
        grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
        print("grown_kb", grown)
    """)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "refused:" in done.stdout and "expands" in done.stdout and "ratio" in done.stdout, done.stdout
    grown_mb = int(done.stdout.split("grown_kb")[1]) / 1024
    assert grown_mb < 2.5 * files.MIN_EXPANSION_BOUND / 2 ** 20, f"peak RSS grew by {grown_mb:.0f} MB"


def test_stream_bound_is_the_ratio_times_the_compressed_size():
    data = bytes(10 * files.MIN_EXPANSION_BOUND)
    compressed = gzip.compress(data)
    with gzip.GzipFile(fileobj=io.BytesIO(compressed)) as f:
        with pytest.raises(ValueError, match=r"expands past .* ratio"):
            read_bounded_stream(f, "bomb.gz", "gzipped file", compressed_size=len(compressed))
    # a stream that stays within max(MIN_EXPANSION_BOUND, ratio x compressed) is read whole
    small = os.urandom(1000) * 50
    with gzip.GzipFile(fileobj=io.BytesIO(gzip.compress(small))) as f:
        assert read_bounded_stream(f, "ok.gz", "gzipped file", compressed_size=100) == small
    assert files.MAX_EXPANSION_RATIO >= 20  # MNIST's gzip files expand ~5x, CIFAR's ~1.1x


def test_read_bounded_refuses_a_file_past_the_bound_and_reads_one_that_grew(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"x" * 100)
    assert read_bounded(path, "file", limit=100) == b"x" * 100
    with pytest.raises(ValueError, match="more than the 99"):
        read_bounded(path, "file", limit=99)


# -- special files: refused before any read -------------------------------------------------

@pytest.mark.parametrize("kind", ["fifo", "device", "link to /dev/zero", "directory"])
def test_special_files_are_refused_before_any_read(tmp_path, kind):
    path = tmp_path / "data"
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "directory":
        path.mkdir()
    else:
        if not os.path.exists("/dev/zero"):
            pytest.skip("no /dev/zero")
        path = pathlib.Path("/dev/zero") if kind == "device" else path
        if kind != "device":
            path.symlink_to("/dev/zero")
    done = run_python(f"""
        from aidge_incremental.files import read_bounded
        try:
            read_bounded({str(path)!r}, "data file")
        except ValueError as e:
            print("refused:", e)
    """, timeout=60)
    assert "refused:" in done.stdout and "not a regular file" in done.stdout, done.stdout + done.stderr


def test_predict_input_fifo_is_refused_not_waited_on(tmp_path):
    """Before: ``predict --input FIFO`` blocked in np.load forever."""
    fifo = tmp_path / "samples.npy"
    os.mkfifo(fifo)
    done = run_python(f"""
        from aidge_incremental.cli import main
        print("rc", main(["predict", "nothing.onnx", "--input", {str(fifo)!r}]))
    """, timeout=60)
    assert "rc 2" in done.stdout and "not a regular file" in done.stderr, done.stdout + done.stderr


# -- files we create: never through a planted link ------------------------------------------

def test_atomic_write_replaces_a_planted_link_instead_of_writing_through_it(tmp_path):
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "results.json").symlink_to(victim)
    atomic_write(tmp_path / "out" / "results.json", b"new")
    assert victim.read_bytes() == b"precious"
    assert (tmp_path / "out" / "results.json").read_bytes() == b"new"
    assert not (tmp_path / "out" / "results.json").is_symlink()


def test_the_accuracy_plot_is_not_written_through_a_planted_temporary_link(tmp_path):
    """Before: plot_accuracy saved to the fixed name ``.accuracy.png.tmp.png``, following
    a link planted there."""
    from aidge_incremental.evaluation import plot_accuracy
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    out = tmp_path / "run"
    out.mkdir()
    (out / ".accuracy.png.tmp.png").symlink_to(victim)
    plot_accuracy({"a": [0.5, 0.4]}, out / "accuracy.png")
    assert victim.read_bytes() == b"precious"
    assert (out / "accuracy.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_memory_file_is_not_written_through_a_planted_temporary_link(tmp_path):
    """Before: the C++ save created ``PATH.tmp-PID`` with O_CREAT|O_TRUNC, following a
    link planted under that predictable name."""
    from aidge_incremental.memory import ExemplarMemory
    memory = ExemplarMemory(budget=4, selection="random")
    memory.update(np.arange(8, dtype=np.uint8).reshape(4, 2), np.array([0, 0, 1, 1]))
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    target = tmp_path / "memory.bin"
    for suffix in (f"tmp-{os.getpid()}", f"tmp-{os.getpid()}-0"):  # the names it used, and uses first
        (tmp_path / f"memory.bin.{suffix}").symlink_to(victim)
    memory.save(target)
    assert victim.read_bytes() == b"precious"
    assert ExemplarMemory.load(target).class_sets == [(0, 2), (1, 2)]


def test_atomic_write_refuses_to_replace_a_device_fifo_or_folder(tmp_path):
    """Before: 'export CKPT /dev/null' renamed a file over the device node."""
    fifo, folder = tmp_path / "fifo", tmp_path / "folder"
    os.mkfifo(fifo)
    folder.mkdir()
    for path, kind in ((fifo, "FIFO"), (folder, "directory"), (pathlib.Path("/dev/null"), "character device")):
        with pytest.raises(OSError, match=f"is a {kind}, not a file to write"):
            atomic_write(path, b"x")
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode) and folder.is_dir() and stat.S_ISCHR(os.lstat("/dev/null").st_mode)
