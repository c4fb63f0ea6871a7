/* gemm.c: the AVX-512 kernels of gemm.h, chosen at run time, and their OpenBLAS fallbacks. */
#include "gemm.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

#include "activation.h"

enum { NT_MIN_K = 128, NN_MIN_K = 32, NN_MAX_K = 128, NN_MAX_B = 128 << 10 }; /* gemm.h */

/* c = relu(c), by the network's own pass, row by row (c's rows are ldc apart) */
static void relu_rows(int m, int n, float *c, size_t ldc) {
  for (int i = 0; i < m; i++) mn_activation_forward(MN_ACT_RELU, 0.0f, c + (size_t)i * ldc, 1, n);
}

static void gemm_nt_blas(int m, int n, int k, const float *a, size_t lda, const float *b,
                         size_t ldb, float *c, size_t ldc, bool relu) {
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, k, 1.0f, a, (int)lda, b, (int)ldb,
              1.0f, c, (int)ldc);
  if (relu) relu_rows(m, n, c, ldc); /* a pass of its own here (c is still in the cache) */
}

static void gemm_nn_blas(int m, int n, int k, const float *a, size_t a_row, size_t a_k,
                         const float *b, size_t ldb, float *c, size_t ldc, bool add) {
  const float beta = add ? 1.0f : 0.0f;
  if (a_k == 1)
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, k, 1.0f, a, (int)a_row, b,
                (int)ldb, beta, c, (int)ldc);
  else
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, m, n, k, 1.0f, a, (int)a_k, b, (int)ldb,
                beta, c, (int)ldc);
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

#define AVX512 __attribute__((target("avx512f,avx512vl,fma")))
#define INLINE static inline __attribute__((always_inline))
enum { MR = 4, NR = 6 }; /* mn_gemm_nt's tile: MR rows of a by NR rows of b */

/* The sums of four vectors, in lanes 0-3: each vector by the same tree (halves, then pairs of
 * neighbours twice, then the 128-bit halves), whichever vectors keep it company. */
AVX512 INLINE __m128 sum4(__m512 v0, __m512 v1, __m512 v2, __m512 v3) {
#define HALVES(v)                                                                                  \
  _mm256_add_ps(_mm512_castps512_ps256(v),                                                         \
                _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)))
  const __m256 h01 = _mm256_hadd_ps(HALVES(v0), HALVES(v1));
  const __m256 h23 = _mm256_hadd_ps(HALVES(v2), HALVES(v3));
#undef HALVES
  const __m256 h = _mm256_hadd_ps(h01, h23);
  return _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
}

/* One k step of 16 lanes: cols vectors of b, then each row of a against all of them. */
#define STEP(LOAD)                                                                                 \
  {                                                                                                \
    __m512 bv[NR];                                                                                 \
    _Pragma("GCC unroll 8") for (int s = 0; s < cols; s++) bv[s] = LOAD(b + (size_t)s * ldb + kk); \
    _Pragma("GCC unroll 8") for (int r = 0; r < rows; r++) {                                       \
      const __m512 av = LOAD(a + (size_t)r * lda + kk);                                            \
      _Pragma("GCC unroll 8") for (int s = 0; s < cols; s++) acc[r][s] =                           \
          _mm512_fmadd_ps(av, bv[s], acc[r][s]);                                                   \
    }                                                                                              \
  }

/* c (rows, cols) += a (rows, k) b (cols, k)^T for rows <= MR, cols <= NR: constants where this
 * is inlined, so the loops unroll and the sums stay in registers. */
AVX512 INLINE void tile(const int rows, const int cols, int k, const float *a, size_t lda,
                        const float *b, size_t ldb, float *c, size_t ldc, bool relu) {
  __m512 acc[MR][NR];
#pragma GCC unroll 8
  for (int r = 0; r < rows; r++)
#pragma GCC unroll 8
    for (int s = 0; s < cols; s++) acc[r][s] = _mm512_setzero_ps();
  int kk = 0;
  for (; kk + 16 <= k; kk += 16) STEP(_mm512_loadu_ps)
  if (kk < k) { /* the tail: absent lanes read as 0 */
    const __mmask16 mask = (__mmask16)((1u << (k - kk)) - 1u);
#define MASKED(p) _mm512_maskz_loadu_ps(mask, p)
    STEP(MASKED)
#undef MASKED
  }
#pragma GCC unroll 8
  for (int r = 0; r < rows; r++) {
    float *cr = c + (size_t)r * ldc;
#pragma GCC unroll 2
    for (int s = 0; s < cols; s += 4) {
      /* a group of fewer than 4 repeats its last sum and stores only its own lanes */
      const int last = cols - 1;
      const __m128 t =
          sum4(acc[r][s], acc[r][s + 1 < last ? s + 1 : last], acc[r][s + 2 < last ? s + 2 : last],
               acc[r][s + 3 < last ? s + 3 : last]);
      const __mmask8 m = (__mmask8)(cols - s >= 4 ? 0xf : (1u << (cols - s)) - 1u);
      const __m128 y = _mm_add_ps(_mm_maskz_loadu_ps(m, cr + s), t);
      /* max(0, y) returns its second operand for a NaN and for y = -0: y < 0 ? 0 : y */
      _mm_mask_storeu_ps(cr + s, m, relu ? _mm_max_ps(_mm_setzero_ps(), y) : y);
    }
  }
}

typedef void tile_fn(int k, const float *a, size_t lda, const float *b, size_t ldb, float *c,
                     size_t ldc, bool relu);
#define TILE(R, S)                                                                                 \
  AVX512 static void tile_##R##_##S(int k, const float *a, size_t lda, const float *b, size_t ldb, \
                                    float *c, size_t ldc, bool relu) {                             \
    tile(R, S, k, a, lda, b, ldb, c, ldc, relu);                                                   \
  }
#define TILE_ROW(R) TILE(R, 1) TILE(R, 2) TILE(R, 3) TILE(R, 4) TILE(R, 5) TILE(R, 6)
TILE_ROW(1)
TILE_ROW(2)
TILE_ROW(3)
TILE_ROW(4)
#define TILE_NAMES(R)                                                                              \
  { tile_##R##_1, tile_##R##_2, tile_##R##_3, tile_##R##_4, tile_##R##_5, tile_##R##_6 }
static tile_fn *const tiles[MR][NR] = {TILE_NAMES(1), TILE_NAMES(2), TILE_NAMES(3), TILE_NAMES(4)};

/* Rows of b outside: a tile's NR rows of b stay in L1 while every block of a's rows passes.
 * a is taken in blocks of at most ~512 KB, so that it is read from L2 for each b tile. */
static void gemm_nt_avx512(int m, int n, int k, const float *a, size_t lda, const float *b,
                           size_t ldb, float *c, size_t ldc, bool relu) {
  int block = (int)(((size_t)512 << 10) / (sizeof(float) * (size_t)k)) / MR * MR;
  if (block < MR) block = MR;
  for (int i0 = 0; i0 < m; i0 += block) {
    const int i1 = m - i0 < block ? m : i0 + block;
    for (int j = 0; j < n; j += NR) {
      const int cols = n - j < NR ? n - j : NR;
      for (int i = i0; i < i1; i += MR) {
        const int rows = i1 - i < MR ? i1 - i : MR;
        tiles[rows - 1][cols - 1](k, a + (size_t)i * lda, lda, b + (size_t)j * ldb, ldb,
                                  c + (size_t)i * ldc + j, ldc, relu);
      }
    }
  }
}

/* mn_gemm_nn's tile: NN_MR rows of c by 32 columns (two vectors, the second masked at the
 * right edge; one vector when 16 columns or fewer are left). */
enum { NN_MR = 12 };

AVX512 INLINE void nn_tile(const int rows, const int vecs, int k, const float *a, size_t a_row,
                           size_t a_k, const float *b, size_t ldb, float *c, size_t ldc,
                           __mmask16 edge, bool add, float *sum) {
  __m512 acc[NN_MR][2];
#pragma GCC unroll 16
  for (int r = 0; r < rows; r++) {
    acc[r][0] = acc[r][1] = _mm512_setzero_ps();
    /* c's old values are needed only at the end: ask for them now, so that a c too big for
     * the caches (the CNN's fc1 dW, 12.8 MB) is not waited for */
    if (add) _mm_prefetch((const char *)(c + (size_t)r * ldc), _MM_HINT_T0);
    if (add && vecs == 2) _mm_prefetch((const char *)(c + (size_t)r * ldc + 16), _MM_HINT_T0);
  }
  for (int l = 0; l < k; l++) {
    const float *bl = b + (size_t)l * ldb, *al = a + (size_t)l * a_k;
    const __m512 b0 = vecs == 2 ? _mm512_loadu_ps(bl) : _mm512_maskz_loadu_ps(edge, bl);
    const __m512 b1 = vecs == 2 ? _mm512_maskz_loadu_ps(edge, bl + 16) : b0;
#pragma GCC unroll 16
    for (int r = 0; r < rows; r++) {
      const __m512 av = _mm512_set1_ps(al[(size_t)r * a_row]);
      acc[r][0] = _mm512_fmadd_ps(av, b0, acc[r][0]);
      if (vecs == 2) acc[r][1] = _mm512_fmadd_ps(av, b1, acc[r][1]);
    }
  }
  /* what is stored is also added up, on the adders the FMAs leave free: a NaN or an
   * infinity anywhere makes that sum non-finite (mn_gemm_nn's answer) */
  __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
#pragma GCC unroll 16
  for (int r = 0; r < rows; r++) { /* c = [c +] the sums */
    float *cr = c + (size_t)r * ldc;
    if (vecs == 2) {
      const __m512 v0 = add ? _mm512_add_ps(_mm512_loadu_ps(cr), acc[r][0]) : acc[r][0];
      const __m512 v1 =
          add ? _mm512_add_ps(_mm512_maskz_loadu_ps(edge, cr + 16), acc[r][1]) : acc[r][1];
      _mm512_storeu_ps(cr, v0);
      _mm512_mask_storeu_ps(cr + 16, edge, v1);
      s0 = _mm512_add_ps(s0, v0);
      s1 = _mm512_add_ps(s1, v1); /* lanes past the edge: 0 unless a row of a is not finite */
    } else {
      const __m512 v0 = add ? _mm512_add_ps(_mm512_maskz_loadu_ps(edge, cr), acc[r][0]) : acc[r][0];
      _mm512_mask_storeu_ps(cr, edge, v0);
      s0 = _mm512_add_ps(s0, v0);
    }
  }
  _mm512_storeu_ps(sum, _mm512_add_ps(_mm512_loadu_ps(sum), _mm512_add_ps(s0, s1)));
}

typedef void nn_tile_fn(int k, const float *a, size_t a_row, size_t a_k, const float *b, size_t ldb,
                        float *c, size_t ldc, __mmask16 edge, bool add, float *sum);
#define NN_TILE(R)                                                                                 \
  AVX512 static void nn_tile_##R##_1(int k, const float *a, size_t a_row, size_t a_k,              \
                                     const float *b, size_t ldb, float *c, size_t ldc,             \
                                     __mmask16 edge, bool add, float *sum) {                       \
    nn_tile(R, 1, k, a, a_row, a_k, b, ldb, c, ldc, edge, add, sum);                               \
  }                                                                                                \
  AVX512 static void nn_tile_##R##_2(int k, const float *a, size_t a_row, size_t a_k,              \
                                     const float *b, size_t ldb, float *c, size_t ldc,             \
                                     __mmask16 edge, bool add, float *sum) {                       \
    nn_tile(R, 2, k, a, a_row, a_k, b, ldb, c, ldc, edge, add, sum);                               \
  }
NN_TILE(1)
NN_TILE(2)
NN_TILE(3)
NN_TILE(4)
NN_TILE(5)
NN_TILE(6)
NN_TILE(7)
NN_TILE(8)
NN_TILE(9)
NN_TILE(10)
NN_TILE(11)
NN_TILE(12)
#define NN_NAMES(R)                                                                                \
  { nn_tile_##R##_1, nn_tile_##R##_2 }
static nn_tile_fn *const nn_tiles[NN_MR][2] = {
    NN_NAMES(1), NN_NAMES(2), NN_NAMES(3), NN_NAMES(4),  NN_NAMES(5),  NN_NAMES(6),
    NN_NAMES(7), NN_NAMES(8), NN_NAMES(9), NN_NAMES(10), NN_NAMES(11), NN_NAMES(12)};

/* Rows of c outside: the tile's broadcasts of a come from the same few lines for a whole row
 * of tiles, and b (at most 512 KB: mn_gemm_nn_own) is read from L2, 32 columns at a time. */
static bool gemm_nn_avx512(int m, int n, int k, const float *a, size_t a_row, size_t a_k,
                           const float *b, size_t ldb, float *c, size_t ldc, bool add) {
  float sum[16] = {0};
  for (int i = 0; i < m; i += NN_MR) {
    const int rows = m - i < NN_MR ? m - i : NN_MR;
    for (int j = 0; j < n; j += 32) {
      const int cols = n - j < 32 ? n - j : 32, vecs = cols > 16 ? 2 : 1;
      const int last = cols - 16 * (vecs - 1); /* columns in the last vector, 1-16 */
      const __mmask16 edge = (__mmask16)(last == 16 ? 0xffffu : (1u << last) - 1u);
      nn_tiles[rows - 1][vecs - 1](k, a + (size_t)i * a_row, a_row, a_k, b + j, ldb,
                                   c + (size_t)i * ldc + j, ldc, edge, add, sum);
    }
  }
  for (int l = 0; l < 16; l++)
    if (!isfinite(sum[l])) return false;
  return true;
}

static bool have_avx512(void) {
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl");
}

#define KERNELS 1
#else
static bool have_avx512(void) { return false; }
#define KERNELS 0
#endif

static int gemm_threads = 1;

void mn_gemm_set_threads(int threads) { gemm_threads = threads > 1 ? threads : 1; }

/* With more than one thread, a GEMM of this many multiply-adds or more is cblas_sgemm's, on
 * every thread; smaller ones stay here, on one (gemm.h). */
#define THREADED_MIN_MACS ((double)(1 << 24))
static bool one_thread(int m, int n, int k) {
  return gemm_threads == 1 || (double)m * (double)n * (double)k < THREADED_MIN_MACS;
}

bool mn_gemm_nt_own(int m, int n, int k) {
  return k >= NT_MIN_K && one_thread(m, n, k) && have_avx512();
}

void mn_gemm_nt(int m, int n, int k, const float *a, size_t lda, const float *b, size_t ldb,
                float *c, size_t ldc, bool relu) {
  if (m <= 0 || n <= 0) return;
  if (k <= 0) { /* c unchanged but for the ReLU */
    if (relu) relu_rows(m, n, c, ldc);
    return;
  }
#if KERNELS
  if (mn_gemm_nt_own(m, n, k)) {
    gemm_nt_avx512(m, n, k, a, lda, b, ldb, c, ldc, relu);
    return;
  }
#endif
  gemm_nt_blas(m, n, k, a, lda, b, ldb, c, ldc, relu);
}

bool mn_gemm_nn_own(int m, int n, int k) {
  return k >= NN_MIN_K && k <= NN_MAX_K && (size_t)n * (size_t)k <= NN_MAX_B &&
         one_thread(m, n, k) && have_avx512();
}

bool mn_gemm_nn(int m, int n, int k, const float *a, size_t a_row, size_t a_k, const float *b,
                size_t ldb, float *c, size_t ldc, bool add) {
  if (m <= 0 || n <= 0) return true; /* nothing stored */
  if (k <= 0) { /* an empty sum */
    if (!add)
      for (int i = 0; i < m; i++) memset(c + (size_t)i * ldc, 0, (size_t)n * sizeof(float));
    return !add;
  }
#if KERNELS
  if (mn_gemm_nn_own(m, n, k)) return gemm_nn_avx512(m, n, k, a, a_row, a_k, b, ldb, c, ldc, add);
#endif
  gemm_nn_blas(m, n, k, a, a_row, a_k, b, ldb, c, ldc, add);
  return false;
}
