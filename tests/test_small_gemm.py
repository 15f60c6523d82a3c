"""The small products' micro-kernels (src/_small_gemm.h) against NumPy.

Every kernel build this CPU runs (portable: 16-byte vectors, AVX2: 32,
AVX-512: 64) computes C := op(A) @ op(B) + beta * C for the three products
of a layer -- forward A @ W ('NN'), weight gradient A.T @ delta ('TN'), delta
propagation delta @ W.T ('NT') -- on shapes on both sides of every switch
inside the kernels: the block of rows (6), whole blocks of two and one
vectors of columns and the columns left over, a single row (four vectors at
a time), the slices of k (256), and B.T's copied slices (64 columns, in
tiles of a vector by a vector, and the edges). Then the switches between the
micro-kernels and BLAS in the kernel's products (matmul): m n k at the
threshold and one above it, and one row times a matrix at GEMV's threshold
and one above it.
"""

import importlib

import numpy as np
import pytest

import cbp._kernel as baseline
from cbp import _dispatch
from cbp._dispatch import kernel
from kernel_paths import kernel_builds, small_gemm_work
import reference

MR, KC, NP = 6, 256, 64                       # src/_small_gemm.h
SMALL_GEMM_WORK = 1 << 20                      # src/_kernel.pyx, for a BLAS that packs
SMALL_GEMV_WORK = 16384                        # src/_network.pxd


@pytest.fixture(params=kernel_builds())
def build(request):
    """Each kernel build this CPU runs, imported."""
    return importlib.import_module(f"cbp.{request.param}")


# (what the shape exercises, m(L), n(L), k(L)) with L the vector's lanes
SHAPES = [
    ("one-element", lambda L: 1, lambda L: 1, lambda L: 1),
    ("k-zero", lambda L: 3, lambda L: 2 * L, lambda L: 0),
    ("one-row-four-vectors", lambda L: 1, lambda L: 4 * L, lambda L: 5),
    ("one-row-four-vectors-and-rest", lambda L: 1, lambda L: 7 * L + 3, lambda L: 9),
    ("one-row-below-four-vectors", lambda L: 1, lambda L: 4 * L - 1, lambda L: 9),
    ("rows-below-a-block", lambda L: MR - 1, lambda L: 2 * L, lambda L: 7),
    ("rows-a-block", lambda L: MR, lambda L: 2 * L, lambda L: 7),
    ("rows-above-a-block", lambda L: MR + 1, lambda L: 2 * L, lambda L: 7),
    ("one-column", lambda L: 13, lambda L: 1, lambda L: 11),
    ("columns-below-a-vector", lambda L: 7, lambda L: L - 1, lambda L: 11),
    ("columns-a-vector", lambda L: 7, lambda L: L, lambda L: 11),
    ("columns-above-a-vector", lambda L: 7, lambda L: L + 1, lambda L: 11),
    ("columns-below-two-vectors", lambda L: 7, lambda L: 2 * L - 1, lambda L: 11),
    ("columns-two-vectors-and-one", lambda L: 7, lambda L: 3 * L + 1, lambda L: 11),
    ("k-below-a-slice", lambda L: 7, lambda L: 2 * L + 3, lambda L: KC - 1),
    ("k-a-slice", lambda L: 7, lambda L: 2 * L + 3, lambda L: KC),
    ("k-above-a-slice", lambda L: 7, lambda L: 2 * L + 3, lambda L: KC + 1),
    ("k-below-a-tile", lambda L: 9, lambda L: L + 3, lambda L: L - 1),
    ("k-a-tile", lambda L: 9, lambda L: 2 * L, lambda L: L),
    ("k-above-a-tile", lambda L: 9, lambda L: L + 1, lambda L: L + 1),
    ("tiles-of-both", lambda L: 5, lambda L: 3 * L, lambda L: 2 * L),
    ("copied-columns-below-a-slice", lambda L: 3, lambda L: NP - 1, lambda L: 2),
    ("copied-columns-above-a-slice", lambda L: 3, lambda L: NP + 1, lambda L: 2),
    ("copied-slices-of-both", lambda L: 3, lambda L: 2 * NP + 5, lambda L: KC + 3),
    ("layer-32x64x64", lambda L: 32, lambda L: 64, lambda L: 64),
    ("odd-everything", lambda L: 17, lambda L: 23, lambda L: 29),
]


def _operands(trans, m, n, k, dtype, seed=0):
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(k, m) if trans[0] == "T" else (m, k)).astype(dtype)
    B = rng.normal(size=(n, k) if trans[1] == "T" else (k, n)).astype(dtype)
    op_a = A.T if trans[0] == "T" else A
    op_b = B.T if trans[1] == "T" else B
    return A, B, op_a.astype(np.float64) @ op_b.astype(np.float64)


def _tolerance(dtype, k):
    # rounding of k products summed, each O(1): float32 eps * k, float64 ...
    eps = np.finfo(dtype).eps
    return dict(rtol=4 * eps * np.sqrt(k + 1), atol=4 * eps * (k + 1))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("trans", ["NN", "TN", "NT"])
@pytest.mark.parametrize("shape", [pytest.param(s, id=s[0]) for s in SHAPES])
def test_product_equals_numpy(build, dtype, trans, shape):
    lanes = build.vector_bytes() // np.dtype(dtype).itemsize or 1
    m, n, k = (f(lanes) for f in shape[1:])
    A, B, expected = _operands(trans, m, n, k, dtype)
    C = np.full((m, n), np.nan, dtype=dtype)   # beta 0 must not read C
    build.product(trans, A, B, C)
    np.testing.assert_allclose(C, expected, **_tolerance(dtype, k),
                               err_msg=f"{trans} (m, n, k) = {(m, n, k)}")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("trans", ["NN", "TN", "NT"])
@pytest.mark.parametrize("beta", [1.0, 0.5])
def test_product_adds_beta_times_c(build, dtype, trans, beta):
    lanes = build.vector_bytes() // np.dtype(dtype).itemsize or 1
    m, n, k = 7, 2 * lanes + 3, 3 * lanes + 2
    A, B, product = _operands(trans, m, n, k, dtype)
    C0 = np.random.default_rng(1).normal(size=(m, n)).astype(dtype)
    C = C0.copy()
    build.product(trans, A, B, C, beta)
    np.testing.assert_allclose(C, product + beta * C0.astype(np.float64),
                               **_tolerance(dtype, k))


@pytest.mark.parametrize("trans", ["NN", "TN", "NT"])
def test_product_is_the_same_every_time(build, trans):
    """Summation order depends on the shapes only: the bits repeat."""
    A, B, _ = _operands(trans, 33, 70, 300, np.float32)
    first, again = np.empty((33, 70), np.float32), np.empty((33, 70), np.float32)
    build.product(trans, A, B, first)
    build.product(trans, A, B, again)
    np.testing.assert_array_equal(first, again)


@pytest.mark.parametrize("trans", ["XN", "N", "TT"])
def test_product_names_an_unknown_transpose(trans):
    A = np.ones((2, 2))
    with pytest.raises(ValueError, match="trans must be NN, TN or NT"):
        kernel.product(trans, A, A, np.empty((2, 2)))


def test_product_names_shapes_that_do_not_fit():
    with pytest.raises(ValueError, match="do not fit NN"):
        kernel.product("NN", np.ones((2, 3)), np.ones((4, 2)), np.empty((2, 2)))


def test_the_builds_report_their_vector_width():
    assert baseline.vector_bytes() in (0, 16)
    assert kernel.vector_bytes() in (0, 16, 32, 64)


# -- the switches between the micro-kernels and BLAS, in a network ----------

def _network_gradient(build, units, n_rows, dtype):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n_rows, units[0])).astype(dtype)
    Y = rng.normal(size=(n_rows, units[-1])).astype(dtype)
    net = build.Network(np.array(units), "tanh", "squared_error", 1e-3, False, n_rows)
    params = rng.normal(scale=0.1, size=net.n_params).astype(dtype)
    grads = np.empty_like(params)
    work = np.empty(net.workspace_size(build.BACKWARD_PART), dtype=dtype)
    loss = build.loss_grad(net, build.Data(X, Y), params, grads, work)
    want = reference.loss_grad(X, Y, None, units, "tanh", "identity", "squared_error",
                               1e-3, params)
    return loss, grads, want


def test_the_picked_build_switches_where_its_blas_needs():
    """A BLAS with small-matrix kernels (OpenBLAS SkylakeX family) keeps
    A @ B and A.T @ B above 4096 multiply-adds; one that packs leaves up to
    2**20 to the micro-kernels; A @ B.T goes to them up to 2**24 with both."""
    previous = kernel.set_small_gemm_work(0)
    kernel.set_small_gemm_work(*previous)
    assert previous == _dispatch.small_gemm_work(_dispatch.blas_architecture())


@pytest.mark.parametrize("architecture, work", [
    ("SkylakeX", (4096, 1 << 24)), ("Cooperlake", (4096, 1 << 24)),
    ("SapphireRapids", (4096, 1 << 24)), ("Haswell", (1 << 20, 1 << 24)),
    ("Zen", (1 << 20, 1 << 24)), (None, (1 << 20, 1 << 24))])
def test_small_gemm_work_of_a_blas(architecture, work):
    assert _dispatch.small_gemm_work(architecture) == work


@pytest.mark.parametrize("n_rows, side", [(64, "at"), (65, "above")])
def test_gradient_on_both_sides_of_the_blas_threshold(build, n_rows, side):
    """With both thresholds at 2**20, (64, 128, 128) is at them: every
    product in the micro-kernels; 65 rows are one above: every product in
    BLAS. Both give the NumPy reference's gradient."""
    assert (n_rows * 128 * 128 <= SMALL_GEMM_WORK) == (side == "at")
    with small_gemm_work(build, SMALL_GEMM_WORK):
        loss, grads, want = _network_gradient(build, (128, 128, 3), n_rows, np.float64)
    np.testing.assert_allclose(loss, want["loss"], rtol=1e-12)
    np.testing.assert_allclose(grads, want["grads"], rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("n_out, side", [(128, "at"), (129, "above")])
def test_one_row_on_both_sides_of_the_gemv_threshold(build, n_out, side):
    """One row times (128, 128), n k = 16384, stays in the micro-kernels; a
    column more goes to GEMV. Both give the NumPy reference's output."""
    assert (128 * n_out <= SMALL_GEMV_WORK) == (side == "at")
    units = (128, n_out, 2)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(1, 128))
    net = build.Network(np.array(units), "relu", "squared_error", 0.0, False, 1)
    params = rng.normal(scale=0.1, size=net.n_params)
    out = np.empty((1, 2))
    work = np.empty(net.workspace_size(build.FORWARD_PART))
    build.forward(net, build.Data(X), params, out, work)
    want = reference.predict(X, units, params, "relu", "identity")
    np.testing.assert_allclose(out, want, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("trans", ["NN", "TN", "NT"])
def test_the_blas_path_of_the_hook_equals_numpy(trans):
    """benchmarks/products.py times BLAS through the same hook."""
    A, B, expected = _operands(trans, 9, 21, 37, np.float64)
    C = np.full((9, 21), np.nan)
    kernel.product(trans, A, B, C, path="blas")
    np.testing.assert_allclose(C, expected, **_tolerance(np.float64, 37))


def test_product_names_an_unknown_path():
    A = np.ones((2, 2))
    with pytest.raises(ValueError, match="path must be micro or blas"):
        kernel.product("NN", A, A, np.empty((2, 2)), path="loops")
