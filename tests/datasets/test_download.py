"""--download against a local HTTP server on the loopback address (never the
internet): files fetched and read, fetched once, a corrupted file refused and
not kept; the pinned digests are well formed and, where the official files
are at hand, right."""
import gzip
import hashlib
import http.server
import os
import pathlib
import threading

import numpy as np
import pytest

from aidge_incremental.datasets import DATASETS, DatasetError, load_dataset, load_mnist
from aidge_incremental.datasets import download as download_module
from aidge_incremental.datasets.download import DOWNLOADS, RemoteFile, download

pytest.importorskip("pooch")


def idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return gzip.compress(header + array.astype(np.uint8).tobytes())


@pytest.fixture
def server(tmp_path, monkeypatch):
    """A file server on 127.0.0.1 (a free port) over ``tmp_path/served``; counts GETs."""
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    root = tmp_path / "served"
    root.mkdir()
    requests = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(root), **kwargs)

        def do_GET(self):
            requests.append(self.path)
            super().do_GET()

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{httpd.server_address[1]}/", requests
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=10)


def fake_mnist(root: pathlib.Path, base: str, rng):
    """Small IDX files in MNIST's names, served at ``base``; their table with the right pins."""
    arrays = {"train-images-idx3-ubyte.gz": rng.integers(0, 256, (40, 28, 28)),
              "train-labels-idx1-ubyte.gz": np.repeat(np.arange(4), 10),
              "t10k-images-idx3-ubyte.gz": rng.integers(0, 256, (12, 28, 28)),
              "t10k-labels-idx1-ubyte.gz": np.repeat(np.arange(4), 3)}
    files = []
    for name, array in arrays.items():
        data = idx_bytes(np.asarray(array))
        (root / name).write_bytes(data)
        files.append(RemoteFile(name, base + name, hashlib.sha256(data).hexdigest(), len(data)))
    return tuple(files), arrays


def test_download_from_the_loopback_server_then_read(server, tmp_path, rng):
    root, base, requests = server
    files, arrays = fake_mnist(root, base, rng)
    folder = download("mnist", tmp_path / "data", files=files)
    assert folder == tmp_path / "data" and len(requests) == 4
    dataset = load_mnist(folder)
    np.testing.assert_array_equal(dataset.x_test[:, 0], arrays["t10k-images-idx3-ubyte.gz"])
    assert dataset.y_train.tolist() == arrays["train-labels-idx1-ubyte.gz"].tolist()
    download("mnist", tmp_path / "data", files=files)  # present with the right digest: not fetched again
    assert len(requests) == 4


def test_a_corrupted_download_is_refused_and_not_kept(server, tmp_path, rng):
    root, base, requests = server
    files, _ = fake_mnist(root, base, rng)
    data = bytearray((root / files[2].name).read_bytes())
    data[40] ^= 0x01  # one bit flipped on the server
    (root / files[2].name).write_bytes(bytes(data))
    with pytest.raises(DatasetError, match="t10k-images-idx3-ubyte.gz: the file downloaded does not have the "
                                           "pinned SHA-256"):
        download("mnist", tmp_path / "data", files=files)
    kept = sorted(p.name for p in (tmp_path / "data").iterdir())
    assert kept == sorted(f.name for f in files[:2]), kept  # the two before it; nothing of the bad one


def test_an_unreachable_file_names_the_url(server, tmp_path):
    root, base, _ = server
    missing = RemoteFile("x.gz", base + "x.gz", "0" * 64, 1)
    with pytest.raises(DatasetError, match=f"cannot download {base}x.gz"):
        download("mnist", tmp_path / "data", files=(missing,))


def test_run_downloads_through_the_cli(server, tmp_path, rng, monkeypatch, capsys):
    from aidge_incremental.cli import main
    root, base, requests = server
    files, _ = fake_mnist(root, base, rng)
    monkeypatch.setitem(DOWNLOADS, "mnist", files)
    monkeypatch.setenv(download_module.DATA_ENV, str(tmp_path / "cache"))
    assert main(["run", "--dataset", "mnist", "--download", "--method", "finetune", "--epochs", "1",
                 "--initial", "2", "--increment", "2", "--output-dir", str(tmp_path / "run"), "--no-progress"]) == 0
    assert "downloading " + base + "t10k-images-idx3-ubyte.gz" in capsys.readouterr().out
    assert sorted(p.name for p in (tmp_path / "cache" / "mnist").iterdir()) == sorted(f.name for f in files)
    # the checkpoint's dataset is found again in the cache, without a request
    assert main(["export", str(tmp_path / "run" / "checkpoints" / "step-001.ckpt"),
                 str(tmp_path / "m.onnx")]) == 0
    assert len(requests) == 4


def test_digits_needs_no_download():
    with pytest.raises(DatasetError, match="ships with the package"):
        load_dataset("digits", download=True)


def test_without_pooch_the_message_says_how_to_install(tmp_path, monkeypatch):
    import builtins
    real_import = builtins.__import__

    def no_pooch(name, *args, **kwargs):
        if name == "pooch":
            raise ImportError("No module named 'pooch'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pooch)
    with pytest.raises(DatasetError, match=r"pip install pooch"):
        download("mnist", tmp_path / "data")
    assert not (tmp_path / "data").exists()


def test_pins_are_sha256_of_known_datasets():
    for name, files in DOWNLOADS.items():
        assert name in DATASETS or name == "fashion-mnist", name  # registered by its own loader file
        for f in files:
            assert len(f.sha256) == 64 and int(f.sha256, 16) >= 0 and f.url.endswith(f.name) and f.size > 0


SHARED_MNIST = pathlib.Path(__file__).resolve().parents[3] / "shared" / "data" / "mnist"


@pytest.mark.skipif(not SHARED_MNIST.is_dir(), reason="the official MNIST t10k files are not at hand")
def test_mnist_pins_match_the_official_files_at_hand():
    pins = {f.name: f.sha256 for f in DOWNLOADS["mnist"]}
    for path in SHARED_MNIST.glob("t10k-*.gz"):
        assert hashlib.sha256(path.read_bytes()).hexdigest() == pins[path.name]
