/* Matrix products of a small network's layers, without BLAS's per-call costs.
 *
 * BLAS packs both operands into its own layout on every call and checks its
 * arguments; a 32 x 64 x 64 product cannot hide that. These register-blocked
 * micro-kernels read the operands where they are (row-major, any leading
 * dimension) and cover the three products of a layer (src/_backprop.pxd):
 *
 *     forward          Z += A @ W          ('N', 'N')   broadcast kernel
 *     weight gradient  G  = A.T @ delta    ('T', 'N')   broadcast kernel
 *     delta propagation D = delta @ W.T    ('N', 'T')   W.T copied, broadcast
 *
 * The broadcast kernel keeps a block of C (MR rows x 2 vectors) in registers
 * and adds, for each p, a(i, p) times row p of B (contiguous): A is read with
 * any row and column step, so A @ W and A.T @ delta are the same kernel.
 * For delta @ W.T, row p of B.T is a strided column of W: W.T is copied
 * first (vector by vector tiles transposed in registers, a slice at a
 * time), k x n values for a product of m x n x k, and goes through the same
 * kernel.
 *
 * Vectors are GCC/Clang vector extensions, as wide as the build's
 * instruction set: 16 bytes (SSE2, the portable build), 32 (AVX2, FMA: the
 * compiler contracts a * b + c into one fused multiply-add), 64 (AVX-512F).
 * Summation order depends only on the shapes and the build, never on
 * threads or data. Without vector extensions (other compilers) the entry
 * points are plain loops.
 *
 * Entry points, each for float (s) and double (d), every matrix row-major:
 *
 *     cbp_small_gemm_s(trans_a, trans_b, m, n, k, A, lda, B, ldb, beta, C, ldc)
 *
 * C := op(A) @ op(B) + beta * C with op(A) (m, k), op(B) (k, n), C (m, n);
 * (trans_a, trans_b) is one of NN, TN, NT; beta 0 does not read C.
 */
#ifndef CBP_SMALL_GEMM_H
#define CBP_SMALL_GEMM_H

#include <stddef.h>
#include <string.h>

#if defined(__GNUC__) || defined(__clang__)
#define CBP_HAVE_VECTORS 1
#if defined(__AVX512F__)
#define CBP_VECTOR_BYTES 64
#elif defined(__AVX__)
#define CBP_VECTOR_BYTES 32
#else
#define CBP_VECTOR_BYTES 16
#endif
#define CBP_INLINE static inline __attribute__((always_inline))
#else
#define CBP_HAVE_VECTORS 0
#define CBP_VECTOR_BYTES 0
#define CBP_INLINE static inline
#endif

/* The broadcast kernel's block: MR rows of C by two vectors. */
#define CBP_MR 6
/* p runs in slices of at most KC, so that a panel of B stays in cache. */
#define CBP_KC 256
/* A @ B.T: B.T is copied CBP_NP columns (by CBP_KC rows) at a time, in
 * tiles of one vector by one vector, transposed in registers. */
#define CBP_NP 64

#define CBP_CAT_(a, b) a##b
#define CBP_CAT(a, b) CBP_CAT_(a, b)

/* LANES: elements per vector, a number the preprocessor can compare */
#define REAL float
#define SFX s
#define LANES (CBP_VECTOR_BYTES / 4)
#include "_small_gemm_impl.h"
#undef REAL
#undef SFX
#undef LANES

#define REAL double
#define SFX d
#define LANES (CBP_VECTOR_BYTES / 8)
#include "_small_gemm_impl.h"
#undef REAL
#undef SFX
#undef LANES

#endif /* CBP_SMALL_GEMM_H */
