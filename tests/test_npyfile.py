""".npy arrays and .npz archives from untrusted bytes (aidge_incremental.npyfile): the header
is checked against the bytes present before anything is allocated, .npz members are bounded
by the decompression ratio limit, and every refusal is the caller's error type naming the source."""
import io
import zipfile

import numpy as np
import pytest

from aidge_incremental.npyfile import load_npy, read_npz


class Refused(ValueError):
    pass


def saved(array) -> bytes:
    out = io.BytesIO()
    np.save(out, array)
    return out.getvalue()


def npy_bytes(shape, descr="<f8", body=b"", fortran=False) -> bytes:
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": descr, "fortran_order": fortran, "shape": shape})
    return header.getvalue() + body


ARRAYS = [np.arange(12, dtype=np.float32).reshape(3, 4), np.asfortranarray(np.arange(12.0).reshape(3, 4)),
          np.zeros((0, 5), np.uint8), np.array(3.5), np.arange(5, dtype=">i4"),
          np.zeros(3, dtype=[("a", "<f4"), ("b", "u1")]), np.array([True, False])]


@pytest.mark.parametrize("array", ARRAYS, ids=lambda a: f"{a.dtype}{a.shape}")
def test_arrays_read_as_np_load_reads_them(array):
    data = saved(array)
    x = load_npy(data, "x.npy")
    reference = np.load(io.BytesIO(data), allow_pickle=False)
    assert x.dtype == reference.dtype and x.shape == reference.shape and x.flags.writeable
    assert x.flags.f_contiguous == reference.flags.f_contiguous
    np.testing.assert_array_equal(x, reference)
    for save in (np.savez, np.savez_compressed):
        packed = io.BytesIO()
        save(packed, w=array, v=array)
        arrays = read_npz(packed.getvalue(), "x.npz")
        assert sorted(arrays) == ["v", "w"] and arrays["w"].dtype == array.dtype and arrays["w"].flags.writeable
        np.testing.assert_array_equal(arrays["w"], array)


def test_a_header_declaring_more_than_the_file_holds_is_refused_before_allocating():
    """Before: np.load of a 128-byte file declaring (1e10, 8, 8) float64 allocated 4.66 TiB: MemoryError."""
    data = npy_bytes((10 ** 10, 8, 8))
    data += bytes(128 - len(data))
    with pytest.raises(Refused, match=r"^x\.npy is not a readable \.npy array \(its header declares shape "
                                      r"\(10000000000, 8, 8\) of float64, 5120000000000 bytes; the file holds "
                                      rf"{128 - len(npy_bytes((10 ** 10, 8, 8)))} bytes of data\)$"):
        load_npy(data, "x.npy", Refused)
    # less than the file holds, a truncated file, and a Fortran-ordered lie alike
    for data in (npy_bytes((2,), body=bytes(24)), saved(np.arange(10.0))[:-8],
                 npy_bytes((10 ** 6, 10 ** 6), body=bytes(8), fortran=True)):
        with pytest.raises(Refused, match="its header declares shape"):
            load_npy(data, "x.npy", Refused)


@pytest.mark.parametrize("data,message", [
    (npy_bytes((2,), "|O", bytes(16)), "dtype object holds Python objects"),
    (npy_bytes((10 ** 12,), "|V0"), "has no size"),
    (npy_bytes((2,), ("<f4", (1000,)), bytes(8000)), "sub-array shape"),
    (b"\x93NUMPY\x01\x00\x10\x00{'descr': 1}" + b" " * 10, "not a .npy array"),
    (b"not an array at all", "not a .npy array"),
    (b"\x93NUMPY\x09\x00", "not a .npy array"),
])
def test_malformed_or_object_headers_are_the_callers_error(data, message):
    with pytest.raises(Refused, match=rf"^src is not a readable \.npy array \(.*{message}"):
        load_npy(data, "src", Refused)


def zipped(members, compression=zipfile.ZIP_DEFLATED) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return out.getvalue()


def test_npz_members_are_bounded_by_the_ratio_limit_from_their_headers(monkeypatch):
    from aidge_incremental import files
    monkeypatch.setattr(files, "MIN_EXPANSION_BOUND", 1 << 20)
    bomb = zipped({"w.npy": saved(np.zeros(1 << 19))})  # 4 MiB of zeros, a few kB deflated
    with pytest.raises(Refused, match=r"^a\.npz: member 'w\.npy' expands to 4194432 bytes, more than 1048576 "
                                      r"\(100x its \d+ compressed bytes, the decompression ratio limit"):
        read_npz(bomb, "a.npz", Refused)
    # members each within the bound, together past that of the archive
    small = saved(np.zeros(100_000, np.uint8))
    many = zipped({f"m{i}.npy": small for i in range(12)})
    assert 100 * len(many) < 12 * len(small) < 2 << 20
    with pytest.raises(Refused, match=r"^a\.npz: its members expand to 1201536 bytes, more than 1048576"):
        read_npz(many, "a.npz", Refused)


@pytest.mark.parametrize("archive,message", [
    (zipped({"w.npy": npy_bytes((10 ** 12,), "<f4", bytes(12))}),
     r"member 'w\.npy': its header declares shape \(1000000000000,\) of float32, 4000000000000 bytes; the member "
     r"holds 12 bytes"),
    (zipped({"w.npy": saved(np.arange(3))}, zipfile.ZIP_BZIP2), "zip compression method 12"),
    (zipped({"w.npy": saved(np.arange(3))}, zipfile.ZIP_LZMA), "zip compression method 14"),
    (zipped({"w.npy": saved(np.array([1, None]))}), "dtype object"),
    (zipped({"notes.txt": b"hello"}), r"member 'notes\.txt' is not an array"),
    (zipped({"w.npy": b"", "x.npy": b""}) + b"", r"member 'w\.npy' is not a readable \.npy array"),
    (b"PK\x03\x04 not a zip", "is not a readable .npz archive: BadZipFile"),
])
def test_malformed_npz_archives_are_the_callers_error(archive, message):
    with pytest.raises(Refused, match=r"^a\.npz"):
        read_npz(archive, "a.npz", Refused)
    with pytest.raises(Refused, match=message):
        read_npz(archive, "a.npz", Refused)


def test_a_corrupted_npz_member_is_the_callers_error():
    archive = bytearray(zipped({"w.npy": saved(np.arange(1000.0))}, zipfile.ZIP_STORED))
    archive[200] ^= 0xFF  # in the array's data: the CRC does not match
    with pytest.raises(Refused, match=r"^a\.npz is not a readable \.npz archive: BadZipFile: Bad CRC-32"):
        read_npz(bytes(archive), "a.npz", Refused)


# -- predict --input ------------------------------------------------------------------------------

def test_predict_input_declaring_a_huge_shape_is_a_one_line_error(tmp_path, capsys):
    """Before: 'internal error: MemoryError ... 4.66 TiB', exit 1."""
    from aidge_incremental.cli import main
    from aidge_incremental.export.targets import read_samples
    path = tmp_path / "x.npy"
    data = npy_bytes((10 ** 10, 8, 8))
    path.write_bytes(data + bytes(128 - len(data)))
    with pytest.raises(ValueError, match=r"x\.npy is not a plain numeric \.npy array \(its header declares shape "
                                         r"\(10000000000, 8, 8\).*\): save the samples with np\.save"):
        read_samples(path)
    assert main(["predict", str(path), "--input", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("aidge-incremental: error: ") and "declares shape" in err[0], err
    path.write_bytes(zipped({"x.npy": saved(np.zeros((2, 8, 8)))}))
    with pytest.raises(ValueError, match="several arrays"):
        read_samples(path)
    np.save(path, np.zeros((0, 8, 8)))
    with pytest.raises(ValueError, match="holds no sample"):
        read_samples(path)
    np.save(path, np.arange(3 * 64, dtype=np.uint8).reshape(3, 8, 8))
    np.testing.assert_array_equal(read_samples(path), np.arange(3 * 64, dtype=np.uint8).reshape(3, 8, 8))
