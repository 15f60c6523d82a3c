/* The micro-kernels of _small_gemm.h for one element type: included once with
 * REAL float, SFX s and once with REAL double, SFX d (LANES: elements per
 * vector). Read _small_gemm.h first. */
#define F(name) CBP_CAT(CBP_CAT(name, _), SFX)

#if CBP_HAVE_VECTORS

#define VEC F(cbp_vector)
typedef REAL VEC __attribute__((vector_size(CBP_VECTOR_BYTES)));

CBP_INLINE VEC F(load)(const REAL *p)
{
    VEC v;
    memcpy(&v, p, sizeof v);  /* one unaligned vector load */
    return v;
}

CBP_INLINE void F(store)(REAL *p, VEC v)
{
    memcpy(p, &v, sizeof v);
}

/* (x, x, ..., x): one broadcast (x + a zero vector would add, for -0) */
CBP_INLINE VEC F(splat)(REAL x)
{
#if LANES == 16
    return (VEC){x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x};
#elif LANES == 8
    return (VEC){x, x, x, x, x, x, x, x};
#elif LANES == 4
    return (VEC){x, x, x, x};
#else
    return (VEC){x, x};
#endif
}

/* C[i, :] := acc + beta * C[i, :] for one vector of C (beta 0: not read). */
CBP_INLINE void F(store_c)(REAL *c, VEC acc, REAL beta)
{
    if (beta == 0)
        F(store)(c, acc);
    else if (beta == 1)
        F(store)(c, F(load)(c) + acc);
    else
        F(store)(c, F(load)(c) * beta + acc);
}

/* Broadcast block: C[:mr, :nv * LANES] (+)= sum_p a(i, p) B[p, :nv * LANES],
 * a(i, p) = A[i * rs + p * cs]; mr <= CBP_MR and nv in {1, 2, 4} (4 with
 * mr 1) are constants where this is inlined, so that acc lives in
 * registers. */
CBP_INLINE void F(broadcast_block)(const int mr, const int nv, ptrdiff_t k,
                                   const REAL *A, ptrdiff_t rs, ptrdiff_t cs,
                                   const REAL *B, ptrdiff_t ldb, REAL beta,
                                   REAL *C, ptrdiff_t ldc)
{
    VEC acc[CBP_MR][4], b[4], a;
    ptrdiff_t p;
    int i, v;
    for (i = 0; i < mr; i++)
        for (v = 0; v < nv; v++)
            acc[i][v] = (VEC){0};
    for (p = 0; p < k; p++) {
        for (v = 0; v < nv; v++)
            b[v] = F(load)(B + p * ldb + v * LANES);
        for (i = 0; i < mr; i++) {
            a = F(splat)(A[i * rs + p * cs]);
            for (v = 0; v < nv; v++)
                acc[i][v] += a * b[v];
        }
    }
    for (i = 0; i < mr; i++)
        for (v = 0; v < nv; v++)
            F(store_c)(C + i * ldc + v * LANES, acc[i][v], beta);
}

/* broadcast_block for any mr in 1..CBP_MR, each with its own registers. */
#define CBP_ROWS_CASES(NV)                                                     \
    switch (mr) {                                                              \
    case 6: F(broadcast_block)(6, NV, k, A, rs, cs, B, ldb, beta, C, ldc); break; \
    case 5: F(broadcast_block)(5, NV, k, A, rs, cs, B, ldb, beta, C, ldc); break; \
    case 4: F(broadcast_block)(4, NV, k, A, rs, cs, B, ldb, beta, C, ldc); break; \
    case 3: F(broadcast_block)(3, NV, k, A, rs, cs, B, ldb, beta, C, ldc); break; \
    case 2: F(broadcast_block)(2, NV, k, A, rs, cs, B, ldb, beta, C, ldc); break; \
    default: F(broadcast_block)(1, NV, k, A, rs, cs, B, ldb, beta, C, ldc); break; \
    }

static void F(broadcast_rows_2)(int mr, ptrdiff_t k, const REAL *A, ptrdiff_t rs,
                                ptrdiff_t cs, const REAL *B, ptrdiff_t ldb,
                                REAL beta, REAL *C, ptrdiff_t ldc)
{
    CBP_ROWS_CASES(2)
}

static void F(broadcast_rows_1)(int mr, ptrdiff_t k, const REAL *A, ptrdiff_t rs,
                                ptrdiff_t cs, const REAL *B, ptrdiff_t ldb,
                                REAL beta, REAL *C, ptrdiff_t ldc)
{
    CBP_ROWS_CASES(1)
}

/* C := sum_p a(i, p) B[p, :] + beta * C, a(i, p) = A[i * rs + p * cs]:
 * A @ B (rs lda, cs 1) or A.T @ B (rs 1, cs lda). C (m, n), B (k, n).
 * A single row (a prediction) goes four vectors at a time: one row by two
 * would leave the multiply-adds waiting on each other. */
static void F(broadcast_gemm)(int m, int n, int k, const REAL *A, ptrdiff_t rs,
                              ptrdiff_t cs, const REAL *B, ptrdiff_t ldb,
                              REAL beta, REAL *C, ptrdiff_t ldc)
{
    REAL panel[CBP_KC * LANES], out[CBP_MR * LANES];
    ptrdiff_t p0, kc, p;
    int i, j, r, t, mr, rest;
    REAL b;
    for (p0 = 0; p0 < k || p0 == 0; p0 += CBP_KC) {
        kc = k - p0 < CBP_KC ? k - p0 : CBP_KC;
        b = p0 == 0 ? beta : 1;  /* later slices add to the first's sums */
        const REAL *Ap = A + p0 * cs, *Bp = B + p0 * ldb;
        j = 0;
        if (m == 1)
            for (; j + 4 * LANES <= n; j += 4 * LANES)
                F(broadcast_block)(1, 4, kc, Ap, rs, cs, Bp + j, ldb, b, C + j, ldc);
        for (; j + 2 * LANES <= n; j += 2 * LANES)
            for (i = 0; i < m; i += CBP_MR)
                F(broadcast_rows_2)(m - i < CBP_MR ? m - i : CBP_MR, kc,
                                    Ap + i * rs, rs, cs, Bp + j, ldb, b,
                                    C + i * ldc + j, ldc);
        if (j + LANES <= n) {
            for (i = 0; i < m; i += CBP_MR)
                F(broadcast_rows_1)(m - i < CBP_MR ? m - i : CBP_MR, kc,
                                    Ap + i * rs, rs, cs, Bp + j, ldb, b,
                                    C + i * ldc + j, ldc);
            j += LANES;
        }
        rest = n - j;
        if (rest == 0)
            continue;
        /* the last rest < LANES columns: B's through a zero-padded copy,
         * C's through out */
        for (p = 0; p < kc; p++) {
            for (t = 0; t < rest; t++)
                panel[p * LANES + t] = Bp[p * ldb + j + t];
            for (; t < LANES; t++)
                panel[p * LANES + t] = 0;
        }
        for (i = 0; i < m; i += CBP_MR) {
            mr = m - i < CBP_MR ? m - i : CBP_MR;
            F(broadcast_rows_1)(mr, kc, Ap + i * rs, rs, cs, panel, LANES, 0,
                                out, LANES);
            for (r = 0; r < mr; r++)
                for (t = 0; t < rest; t++) {
                    REAL *c = C + (i + r) * ldc + j + t;
                    *c = b == 0 ? out[r * LANES + t] : *c * b + out[r * LANES + t];
                }
        }
    }
}

#define SHUF __builtin_shufflevector

/* dst[p * ldd + j] = src[j * lds + p] for p, j < LANES: a tile of LANES
 * rows, transposed in registers (log2(LANES) stages; stage h swaps the
 * h-lane blocks of rows i and i + h). */
CBP_INLINE void F(transpose_tile)(const REAL *src, ptrdiff_t lds, REAL *dst,
                                  ptrdiff_t ldd)
{
    VEC v[LANES], x, y;
    int i;
    for (i = 0; i < LANES; i++)
        v[i] = F(load)(src + i * lds);
#if LANES == 16
    for (i = 0; i < 16; i += 2) {
        x = v[i], y = v[i + 1];
        v[i] = SHUF(x, y, 0, 16, 2, 18, 4, 20, 6, 22, 8, 24, 10, 26, 12, 28, 14, 30);
        v[i + 1] = SHUF(x, y, 1, 17, 3, 19, 5, 21, 7, 23, 9, 25, 11, 27, 13, 29, 15, 31);
    }
    for (i = 0; i < 16; i++) if (!(i & 2)) {
        x = v[i], y = v[i + 2];
        v[i] = SHUF(x, y, 0, 1, 16, 17, 4, 5, 20, 21, 8, 9, 24, 25, 12, 13, 28, 29);
        v[i + 2] = SHUF(x, y, 2, 3, 18, 19, 6, 7, 22, 23, 10, 11, 26, 27, 14, 15, 30, 31);
    }
    for (i = 0; i < 16; i++) if (!(i & 4)) {
        x = v[i], y = v[i + 4];
        v[i] = SHUF(x, y, 0, 1, 2, 3, 16, 17, 18, 19, 8, 9, 10, 11, 24, 25, 26, 27);
        v[i + 4] = SHUF(x, y, 4, 5, 6, 7, 20, 21, 22, 23, 12, 13, 14, 15, 28, 29, 30, 31);
    }
    for (i = 0; i < 8; i++) {
        x = v[i], y = v[i + 8];
        v[i] = SHUF(x, y, 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23);
        v[i + 8] = SHUF(x, y, 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31);
    }
#elif LANES == 8
    for (i = 0; i < 8; i += 2) {
        x = v[i], y = v[i + 1];
        v[i] = SHUF(x, y, 0, 8, 2, 10, 4, 12, 6, 14);
        v[i + 1] = SHUF(x, y, 1, 9, 3, 11, 5, 13, 7, 15);
    }
    for (i = 0; i < 8; i++) if (!(i & 2)) {
        x = v[i], y = v[i + 2];
        v[i] = SHUF(x, y, 0, 1, 8, 9, 4, 5, 12, 13);
        v[i + 2] = SHUF(x, y, 2, 3, 10, 11, 6, 7, 14, 15);
    }
    for (i = 0; i < 4; i++) {
        x = v[i], y = v[i + 4];
        v[i] = SHUF(x, y, 0, 1, 2, 3, 8, 9, 10, 11);
        v[i + 4] = SHUF(x, y, 4, 5, 6, 7, 12, 13, 14, 15);
    }
#elif LANES == 4
    for (i = 0; i < 4; i += 2) {
        x = v[i], y = v[i + 1];
        v[i] = SHUF(x, y, 0, 4, 2, 6);
        v[i + 1] = SHUF(x, y, 1, 5, 3, 7);
    }
    for (i = 0; i < 2; i++) {
        x = v[i], y = v[i + 2];
        v[i] = SHUF(x, y, 0, 1, 4, 5);
        v[i + 2] = SHUF(x, y, 2, 3, 6, 7);
    }
#else /* 2 */
    x = v[0], y = v[1];
    v[0] = SHUF(x, y, 0, 2);
    v[1] = SHUF(x, y, 1, 3);
#endif
    for (i = 0; i < LANES; i++)
        F(store)(dst + i * ldd, v[i]);
}

/* C := A @ B.T + beta * C: B.T copied, CBP_NP columns by CBP_KC rows at a
 * time, then the broadcast kernel. The copy goes LANES x LANES tiles at a
 * time through registers (the edges value by value). (Summing along k,
 * contiguous in both A and B, needs each element's vector of partial sums
 * added up at the end: measured slower than the copy on AVX2, even on
 * AVX-512.) */
static void F(transposed_gemm)(int m, int n, int k, const REAL *A, ptrdiff_t lda,
                               const REAL *B, ptrdiff_t ldb, REAL beta, REAL *C,
                               ptrdiff_t ldc)
{
    REAL panel[CBP_KC * CBP_NP];
    int j0, nj, j, jt, p0, kc, p, pt;
    for (j0 = 0; j0 < n; j0 += CBP_NP) {
        nj = n - j0 < CBP_NP ? n - j0 : CBP_NP;
        for (p0 = 0; p0 < k || p0 == 0; p0 += CBP_KC) {
            kc = k - p0 < CBP_KC ? k - p0 : CBP_KC;
            const REAL *Bp = B + j0 * ldb + p0;
            for (jt = 0; jt < nj; jt += LANES)
                for (pt = 0; pt < kc; pt += LANES) {
                    if (jt + LANES <= nj && pt + LANES <= kc) {
                        F(transpose_tile)(Bp + jt * ldb + pt, ldb,
                                          panel + pt * CBP_NP + jt, CBP_NP);
                        continue;
                    }
                    for (j = jt; j < nj && j < jt + LANES; j++)
                        for (p = pt; p < kc && p < pt + LANES; p++)
                            panel[p * CBP_NP + j] = Bp[j * ldb + p];
                }
            F(broadcast_gemm)(m, nj, kc, A + p0, lda, 1, panel, CBP_NP,
                              p0 == 0 ? beta : 1, C + j0, ldc);
        }
    }
}

#undef SHUF

static void F(cbp_small_gemm)(char trans_a, char trans_b, int m, int n, int k,
                              const REAL *A, int lda, const REAL *B, int ldb,
                              REAL beta, REAL *C, int ldc)
{
    if (m <= 0 || n <= 0)
        return;
    if (trans_b == 'T')
        F(transposed_gemm)(m, n, k, A, lda, B, ldb, beta, C, ldc);
    else if (trans_a == 'T')
        F(broadcast_gemm)(m, n, k, A, 1, lda, B, ldb, beta, C, ldc);
    else
        F(broadcast_gemm)(m, n, k, A, lda, 1, B, ldb, beta, C, ldc);
}

#undef VEC

#else /* no vector extensions: plain loops */

static void F(cbp_small_gemm)(char trans_a, char trans_b, int m, int n, int k,
                              const REAL *A, int lda, const REAL *B, int ldb,
                              REAL beta, REAL *C, int ldc)
{
    int i, j, p;
    for (i = 0; i < m; i++)
        for (j = 0; j < n; j++) {
            REAL total = 0;
            for (p = 0; p < k; p++)
                total += (trans_a == 'T' ? A[p * lda + i] : A[i * lda + p])
                       * (trans_b == 'T' ? B[j * ldb + p] : B[p * ldb + j]);
            C[i * ldc + j] = beta == 0 ? total : C[i * ldc + j] * beta + total;
        }
}

#endif

#undef F
