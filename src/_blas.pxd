# Row-major GEMM on top of scipy.linalg.cython_blas (Fortran, column-major).
#
# A row-major (m, n) matrix is, to column-major BLAS, its (n, m) transpose; so
# C = op(A) @ op(B) is computed as C.T = op(B).T @ op(A).T, swapping the roles
# of A and B (as sklearn/utils/_cython_blas.pyx does for RowMajor).
from cython cimport floating
from scipy.linalg.cython_blas cimport sdot, ddot, sgemm, dgemm, sgemv, dgemv, sger, dger


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


cdef inline void gemv_column(char trans_a, char trans_b, int m, int k,
                             floating alpha, const floating *A, int lda,
                             const floating *B, int ldb, floating beta,
                             floating *C, int ldc) noexcept nogil:
    """C := alpha * op(A) @ op(B) + beta * C for one column: gemm with n = 1.

    op(A): (m, k); op(B): (k, 1); C: (m, 1). The column of op(B) is B's
    column (stride ldb) for 'N', its row (stride 1) for 'T'; C's has stride ldc.
    GEMM packs its operands on every call, which costs more than the product
    when one side is a vector; GEMV reads the matrix once. (A single row,
    c = a @ op(B), is the column op(B).T @ a.)
    """
    cdef int inc_b = ldb if trans_b == c'N' else 1
    # Column-major BLAS sees the stored A as A.T (ld = lda): A @ b = (A.T).T @ b
    # ('T', the stored matrix is (k, m)); A.T @ b ('N', (m, k)).
    cdef char trans = c'T' if trans_a == c'N' else c'N'
    cdef int rows = k if trans_a == c'N' else m
    cdef int cols = m if trans_a == c'N' else k
    if floating is float:
        sgemv(&trans, &rows, &cols, &alpha, <float *> A, &lda, <float *> B, &inc_b,
              &beta, C, &ldc)
    else:
        dgemv(&trans, &rows, &cols, &alpha, <double *> A, &lda, <double *> B, &inc_b,
              &beta, C, &ldc)


cdef inline void outer(char trans_a, char trans_b, int m, int n,
                       floating alpha, const floating *A, int lda,
                       const floating *B, int ldb, floating beta,
                       floating *C, int ldc) noexcept nogil:
    """C := alpha * op(A) @ op(B) + beta * C for k = 1: an outer product.

    op(A): (m, 1), a column of A ('N', stride lda) or a row ('T', stride 1);
    op(B): (1, n), a row of B ('N', stride 1) or a column ('T', stride ldb).
    """
    cdef int i, j
    cdef int inc_a = lda if trans_a == c'N' else 1
    cdef int inc_b = 1 if trans_b == c'N' else ldb
    for i in range(m):
        for j in range(n):
            C[i * ldc + j] = 0 if beta == 0 else C[i * ldc + j] * beta
    # column-major, C is C.T (n, m): C.T += b a.T
    if floating is float:
        sger(&n, &m, &alpha, <float *> B, &inc_b, <float *> A, &inc_a, C, &ldc)
    else:
        dger(&n, &m, &alpha, <double *> B, &inc_b, <double *> A, &inc_a, C, &ldc)


cdef inline double dot(Py_ssize_t n, const floating *x) noexcept nogil:
    """x @ x, for a contiguous vector x of n values (any n: BLAS takes at most
    INT_MAX values a call, so longer vectors go in pieces)."""
    cdef int one = 1, piece
    cdef Py_ssize_t i, end = n - n % 4, start
    cdef double t0 = 0.0, t1 = 0.0, t2 = 0.0, t3 = 0.0
    if n > 2147483647:
        start = 0
        while start < n:
            piece = <int> min(n - start, <Py_ssize_t> 1 << 30)
            t0 += dot(piece, x + start)
            start += piece
        return t0
    if n <= 256:
        # BLAS's call costs more than the loop; four running sums, so that
        # the additions do not wait on each other
        for i in range(0, end, 4):
            t0 += <double> x[i] * x[i]
            t1 += <double> x[i + 1] * x[i + 1]
            t2 += <double> x[i + 2] * x[i + 2]
            t3 += <double> x[i + 3] * x[i + 3]
        for i in range(end, n):
            t0 += <double> x[i] * x[i]
        return (t0 + t1) + (t2 + t3)
    piece = <int> n
    if floating is float:
        return sdot(&piece, <float *> x, &one, <float *> x, &one)
    else:
        return ddot(&piece, <double *> x, &one, <double *> x, &one)


cdef extern from "_small_gemm.h" nogil:
    void small_gemm_s "cbp_small_gemm_s"(char trans_a, char trans_b, int m, int n,
                                         int k, const float *A, int lda,
                                         const float *B, int ldb, float beta,
                                         float *C, int ldc)
    void small_gemm_d "cbp_small_gemm_d"(char trans_a, char trans_b, int m, int n,
                                         int k, const double *A, int lda,
                                         const double *B, int ldb, double beta,
                                         double *C, int ldc)
    int SMALL_GEMM_VECTOR_BYTES "CBP_VECTOR_BYTES"


cdef inline void small_gemm(char trans_a, char trans_b, int m, int n, int k,
                            const floating *A, int lda, const floating *B,
                            int ldb, floating beta, floating *C,
                            int ldc) noexcept nogil:
    """C := op(A) @ op(B) + beta * C (row-major) by the register-blocked
    micro-kernels of _small_gemm.h, for products too small for BLAS to pay:
    nothing is packed or checked per call. Same arguments as gemm with
    alpha 1; (trans_a, trans_b) is one of NN, TN, NT; beta 0 does not read C.
    """
    if floating is float:
        small_gemm_s(trans_a, trans_b, m, n, k, A, lda, B, ldb, beta, C, ldc)
    else:
        small_gemm_d(trans_a, trans_b, m, n, k, A, lda, B, ldb, beta, C, ldc)
