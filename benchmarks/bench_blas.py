"""Which BLAS for the convolution kernels: scipy-openblas32 (what the core links)
against Intel MKL from PyPI, single-threaded sgemm on the shapes the shifted
convolution issues (FastConvImpl_kernels.hpp), interleaved in one run.

    pip install mkl   # optional: without it only OpenBLAS is timed
    python benchmarks/bench_blas.py                              # OPENBLAS_CORETYPE as set
    env -u OPENBLAS_CORETYPE python benchmarks/bench_blas.py     # OpenBLAS's own choice of kernels

Both libraries are called through their CBLAS symbols with ctypes; the inputs
are the same arrays. MKL is looked for as ``libmkl_rt.so*`` in ``sys.prefix/lib``
(where the ``mkl`` wheel puts it).
"""
import ctypes
import glob
import os
import sys
import time

import numpy as np
import scipy_openblas32

ROW_MAJOR, NO_TRANS, TRANS = 101, 111, 112

# (transA, transB, M, N, K): the products of a 3x3 pad-1 convolution, batch
# chunk as FastConvImpl chooses it (see shiftedSamplesPerChunk)
SHAPES = {
    "forward 16->16 @32x32": (False, False, 16, 1089, 16),
    "weight grad 16->16 @32x32": (False, True, 16, 16, 1089),
    "input grad 16->16 @32x32": (True, False, 16, 1089, 16),
    "forward 32->32 @16x16": (False, False, 32, 289, 32),
    "forward 64->64 @8x8 (3 samples)": (False, False, 64, 243, 64),
    "weight grad 64->64 @8x8 (3 samples)": (False, True, 64, 64, 243),
}


def load_openblas():
    lib = ctypes.CDLL(glob.glob(os.path.join(scipy_openblas32.get_lib_dir(), "libscipy_openblas*.so"))[0])
    lib.scipy_openblas_set_num_threads(1)
    lib.scipy_openblas_get_config.restype = ctypes.c_char_p
    return lib.scipy_cblas_sgemm, lib.scipy_openblas_get_config().decode()


def load_mkl():
    found = sorted(glob.glob(os.path.join(sys.prefix, "lib", "libmkl_rt.so*")))
    if not found:
        return None, "not installed (pip install mkl)"
    lib = ctypes.CDLL(found[0])
    lib.MKL_Set_Num_Threads(1)
    buf = ctypes.create_string_buffer(256)
    lib.MKL_Get_Version_String(buf, len(buf))
    return lib.cblas_sgemm, buf.value.decode().strip()


def sgemm(fn, ta, tb, m, n, k, a, b, c):
    fn(ROW_MAJOR, TRANS if ta else NO_TRANS, TRANS if tb else NO_TRANS, m, n, k, ctypes.c_float(1.0),
       a.ctypes.data_as(ctypes.c_void_p), a.shape[1], b.ctypes.data_as(ctypes.c_void_p), b.shape[1],
       ctypes.c_float(1.0), c.ctypes.data_as(ctypes.c_void_p), n)


def main():
    openblas, openblas_config = load_openblas()
    mkl, mkl_version = load_mkl()
    print(f"OpenBLAS: {openblas_config}")
    print(f"MKL: {mkl_version}")
    print(f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', 'unset')}; one thread each; "
          "microseconds per call, best of 5 x 200 calls, interleaved")
    print(f"{'product':38s} {'OpenBLAS':>9s} {'MKL':>9s} {'MKL/OpenBLAS':>13s}")
    rng = np.random.default_rng(0)
    for name, (ta, tb, m, n, k) in SHAPES.items():
        a = rng.standard_normal((k, m) if ta else (m, k)).astype(np.float32)
        b = rng.standard_normal((n, k) if tb else (k, n)).astype(np.float32)
        c = np.zeros((m, n), np.float32)
        libs = [openblas] + ([mkl] if mkl else [])
        best = [float("inf")] * len(libs)
        for _ in range(5):
            for i, fn in enumerate(libs):
                start = time.perf_counter()
                for _ in range(200):
                    sgemm(fn, ta, tb, m, n, k, a, b, c)
                best[i] = min(best[i], (time.perf_counter() - start) / 200 * 1e6)
        theirs = f"{best[1]:9.2f} {best[1] / best[0]:12.2f}x" if mkl else f"{'n/a':>9s} {'n/a':>13s}"
        print(f"{name:38s} {best[0]:9.2f} {theirs}")


if __name__ == "__main__":
    main()
