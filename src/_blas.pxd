# Row-major GEMM on top of scipy.linalg.cython_blas (Fortran, column-major).
#
# A row-major (m, n) matrix is, to column-major BLAS, its (n, m) transpose; so
# C = op(A) @ op(B) is computed as C.T = op(B).T @ op(A).T, swapping the roles
# of A and B (as sklearn/utils/_cython_blas.pyx does for RowMajor).
from cython cimport floating
from scipy.linalg.cython_blas cimport sgemm, dgemm


cdef inline void gemm(char trans_a, char trans_b, int m, int n, int k,
                      floating alpha, const floating *A, int lda,
                      const floating *B, int ldb, floating beta,
                      floating *C, int ldc) noexcept nogil:
    """C := alpha * op(A) @ op(B) + beta * C, every matrix row-major.

    op(A) is (m, k), op(B) is (k, n), C is (m, n); lda, ldb, ldc are the row
    lengths of A, B and C as stored. trans_* is b'N' or b'T'.
    """
    if floating is float:
        sgemm(&trans_b, &trans_a, &n, &m, &k, &alpha, <float *> B, &ldb,
              <float *> A, &lda, &beta, C, &ldc)
    else:
        dgemm(&trans_b, &trans_a, &n, &m, &k, &alpha, <double *> B, &ldb,
              <double *> A, &lda, &beta, C, &ldc)
