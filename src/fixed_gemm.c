/* fixed_gemm.c: the fixed-sum GEMM of fixed_gemm.h: an AVX2 + FMA kernel chosen at run time,
 * and the portable loop it must agree with bit for bit. */
#include "fixed_gemm.h"

#include <math.h>
#include <string.h>

#define NR MN_FIXED_NR

size_t mn_fixed_packed_size(int rows, int cols) {
  return (size_t)((rows + NR - 1) / NR) * NR * (size_t)cols;
}

static void pack_portable(int rows, int cols, const float *w, float *packed) {
  enum { KB = 16 }; /* a 16 x 16 block: 16 rows of w read in order, one panel's lines written */
  for (int p = 0; p * NR < rows; p++) {
    const int nj = rows - p * NR < NR ? rows - p * NR : NR;
    float *panel = packed + (size_t)p * NR * (size_t)cols;
    const float *wp = w + (size_t)p * NR * (size_t)cols;
    if (nj < NR) memset(panel, 0, (size_t)NR * (size_t)cols * sizeof(float));
    for (int k0 = 0; k0 < cols; k0 += KB) {
      const int nk = cols - k0 < KB ? cols - k0 : KB;
      for (int j = 0; j < nj; j++)
        for (int k = 0; k < nk; k++)
          panel[(size_t)(k0 + k) * NR + (size_t)j] =
              wp[(size_t)j * (size_t)cols + (size_t)(k0 + k)];
    }
  }
}

void mn_fixed_pack_rows(int rows, int cols, const float *x, int total_rows, int at, float *packed) {
  for (int p = 0; p * NR < cols; p++) {
    const int nj = cols - p * NR < NR ? cols - p * NR : NR;
    float *panel = packed + (size_t)p * NR * (size_t)total_rows + (size_t)at * NR;
    const float *src = x + (size_t)p * NR;
    if (nj == NR) /* a constant size: the copy is two vector moves, not a call */
      for (int r = 0; r < rows; r++)
        memcpy(panel + (size_t)r * NR, src + (size_t)r * (size_t)cols, NR * sizeof(float));
    else
      for (int r = 0; r < rows; r++)
        memcpy(panel + (size_t)r * NR, src + (size_t)r * (size_t)cols, (size_t)nj * sizeof(float));
  }
}

void mn_fixed_gemm_portable(const mn_fixed_gemm_args *g) {
  const int parts = g->parts > 1 ? g->parts : 1, kp = g->k / parts;
  for (int i = 0; i < g->m; i++)
    for (int j = 0; j < g->n; j++) {
      const float *a = g->a + (size_t)i * g->a_row;
      const float *b = g->b + (size_t)(j / NR) * g->b_panel + (size_t)(j % NR);
      float s = 0.0f, stack[32];
      int depth = 0;
      for (int part = 0; part < parts; part++) {
        s = 0.0f;
        for (int kk = part * kp; kk < (part + 1) * kp; kk++)
          s = fmaf(a[(size_t)kk * g->a_k], b[(size_t)kk * g->b_k], s);
        /* a binary counter of the parts done: part + 1 carries once per trailing zero bit,
         * each carry adding two subtrees of equal size */
        for (unsigned bits = (unsigned)part + 1; (bits & 1u) == 0; bits >>= 1)
          s = stack[--depth] + s;
        stack[depth++] = s;
      }
      float *c = g->c + (size_t)i * g->ldc + (size_t)j;
      *c = g->add ? *c + s : s;
    }
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

#define AVX2 __attribute__((target("avx2,fma")))
enum { MAX_DEPTH = 16 }; /* parts <= 2^16 */

/* One panel (NR = 16 columns, two registers) of MR rows: 2 MR accumulators, each the chain of
 * fixed_gemm.h for 8 outputs. A partial last panel loads and stores through masks. */
#define ROW(r)                                                                                     \
  if (ROWS > (r)) {                                                                                \
    const __m256 av = _mm256_broadcast_ss(a + (size_t)(r)*g->a_row + (size_t)kk * g->a_k);         \
    c##r##0 = _mm256_fmadd_ps(av, b0, c##r##0);                                                    \
    c##r##1 = _mm256_fmadd_ps(av, b1, c##r##1);                                                    \
  }
#define K_LOOP(LOAD0, LOAD1)                                                                       \
  for (int kk = k0; kk < k1; kk++) {                                                               \
    const float *bk = b + (size_t)kk * g->b_k;                                                     \
    const __m256 b0 = LOAD0, b1 = LOAD1;                                                           \
    ROW(0) ROW(1) ROW(2) ROW(3) ROW(4) ROW(5)                                                      \
  }
#define STORE(r)                                                                                   \
  if (ROWS > (r)) {                                                                                \
    float *cr = c + (size_t)(r)*g->ldc;                                                            \
    if (!partial) {                                                                                \
      if (g->add) c##r##0 = _mm256_add_ps(_mm256_loadu_ps(cr), c##r##0);                           \
      if (g->add) c##r##1 = _mm256_add_ps(_mm256_loadu_ps(cr + 8), c##r##1);                       \
      _mm256_storeu_ps(cr, c##r##0), _mm256_storeu_ps(cr + 8, c##r##1);                            \
    } else {                                                                                       \
      if (g->add) c##r##0 = _mm256_add_ps(_mm256_maskload_ps(cr, m0), c##r##0);                    \
      if (g->add) c##r##1 = _mm256_add_ps(_mm256_maskload_ps(cr + 8, m1), c##r##1);                \
      _mm256_maskstore_ps(cr, m0, c##r##0), _mm256_maskstore_ps(cr + 8, m1, c##r##1);              \
    }                                                                                              \
  }
/* parts: the accumulators start from zero for each part; the binary counter's carries add
 * the subtree on top of the stack to them (the order of an IEEE addition's operands does not
 * change its bits), and a part that does not finish the sum is pushed. */
#define ZERO(r)                                                                                    \
  if (ROWS > (r)) c##r##0 = z, c##r##1 = z;
#define POP(r)                                                                                     \
  if (ROWS > (r)) {                                                                                \
    c##r##0 = _mm256_add_ps(stack[depth][2 * (r)], c##r##0);                                       \
    c##r##1 = _mm256_add_ps(stack[depth][2 * (r) + 1], c##r##1);                                   \
  }
#define PUSH(r)                                                                                    \
  if (ROWS > (r)) stack[depth][2 * (r)] = c##r##0, stack[depth][2 * (r) + 1] = c##r##1;
#define EACH_ROW(OP) OP(0) OP(1) OP(2) OP(3) OP(4) OP(5)
#define DEFINE_TILE(MR)                                                                            \
  AVX2 static void tile##MR(const mn_fixed_gemm_args *g, int i0, int p) {                          \
    enum { ROWS = MR };                                                                            \
    const float *a = g->a + (size_t)i0 * g->a_row;                                                 \
    const float *b = g->b + (size_t)p * g->b_panel;                                                \
    float *c = g->c + (size_t)i0 * g->ldc + (size_t)p * NR;                                        \
    const int cols = g->n - p * NR;                                                                \
    const bool partial = cols < NR;                                                                \
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);                                \
    const __m256i m0 = _mm256_cmpgt_epi32(_mm256_set1_epi32(cols), lane);                          \
    const __m256i m1 = _mm256_cmpgt_epi32(_mm256_set1_epi32(cols - 8), lane);                      \
    const int parts = g->parts > 1 ? g->parts : 1, kp = g->k / parts;                              \
    const __m256 z = _mm256_setzero_ps();                                                          \
    __m256 c00 = z, c01 = z, c10 = z, c11 = z, c20 = z, c21 = z;                                   \
    __m256 c30 = z, c31 = z, c40 = z, c41 = z, c50 = z, c51 = z;                                   \
    __m256 stack[MAX_DEPTH][12];                                                                   \
    int depth = 0;                                                                                 \
    for (int part = 0; part < parts; part++) {                                                     \
      const int k0 = part * kp, k1 = k0 + kp;                                                      \
      EACH_ROW(ZERO)                                                                               \
      if (!partial) {                                                                              \
        K_LOOP(_mm256_loadu_ps(bk), _mm256_loadu_ps(bk + 8))                                       \
      } else {                                                                                     \
        K_LOOP(_mm256_maskload_ps(bk, m0), _mm256_maskload_ps(bk + 8, m1))                         \
      }                                                                                            \
      for (unsigned bits = (unsigned)part + 1; (bits & 1u) == 0; bits >>= 1) {                     \
        depth--;                                                                                   \
        EACH_ROW(POP)                                                                              \
      }                                                                                            \
      if (part + 1 < parts) {                                                                      \
        EACH_ROW(PUSH)                                                                             \
        depth++;                                                                                   \
      }                                                                                            \
    }                                                                                              \
    EACH_ROW(STORE)                                                                                \
  }
DEFINE_TILE(1)
DEFINE_TILE(2)
DEFINE_TILE(3)
DEFINE_TILE(4)
DEFINE_TILE(5)
DEFINE_TILE(6)

typedef void tile_fn(const mn_fixed_gemm_args *g, int i0, int p);
static tile_fn *const tiles[7] = {NULL, tile1, tile2, tile3, tile4, tile5, tile6};

/* The loop order only moves data, never a sum. A b too big for L2 (a weight matrix) is read
 * once: panels outside, so each panel serves every row block while it is in L1. A small b
 * (a weight gradient's micro-batch of x) stays in cache anyway: rows outside, so that c, the
 * big operand then, is swept in address order, row block by row block. */
static void gemm_avx2(const mn_fixed_gemm_args *g) {
  const int panels = (g->n + NR - 1) / NR;
  if ((size_t)g->k * (size_t)g->n <= 32768) {
    for (int i0 = 0; i0 < g->m; i0 += 6)
      for (int p = 0; p < panels; p++) tiles[g->m - i0 < 6 ? g->m - i0 : 6](g, i0, p);
  } else {
    for (int p = 0; p < panels; p++)
      for (int i0 = 0; i0 < g->m; i0 += 6) tiles[g->m - i0 < 6 ? g->m - i0 : 6](g, i0, p);
  }
}

static bool have_avx2(void) {
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

/* 8 x 8 blocks transposed in registers: the panels of full 16-row blocks of w, 8 columns at
 * a time; the rest (a last partial panel, columns past a multiple of 8) the portable way. */
AVX2 static void pack_avx2(int rows, int cols, const float *w, float *packed) {
  const int full = rows / NR, cols8 = cols / 8 * 8;
  for (int p = 0; p < full; p++) {
    float *panel = packed + (size_t)p * NR * (size_t)cols;
    for (int j0 = 0; j0 < NR; j0 += 8) {
      const float *wr = w + ((size_t)p * NR + (size_t)j0) * (size_t)cols;
      for (int k0 = 0; k0 < cols8; k0 += 8) {
        __m256 r[8], t[8], u[8];
        for (int i = 0; i < 8; i++) r[i] = _mm256_loadu_ps(wr + (size_t)i * (size_t)cols + k0);
        for (int i = 0; i < 8; i += 2) {
          t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
          t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
        }
        for (int i = 0; i < 8; i += 4) {
          u[i] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(1, 0, 1, 0));
          u[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(3, 2, 3, 2));
          u[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(1, 0, 1, 0));
          u[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(3, 2, 3, 2));
        }
        for (int i = 0; i < 4; i++) {
          float *out = panel + (size_t)(k0 + i) * NR + (size_t)j0;
          _mm256_storeu_ps(out, _mm256_permute2f128_ps(u[i], u[i + 4], 0x20));
          _mm256_storeu_ps(out + 4 * NR, _mm256_permute2f128_ps(u[i], u[i + 4], 0x31));
        }
      }
      for (int k = cols8; k < cols; k++)
        for (int j = 0; j < 8; j++)
          panel[(size_t)k * NR + (size_t)(j0 + j)] = wr[(size_t)j * (size_t)cols + (size_t)k];
    }
  }
  if (full * NR < rows)
    pack_portable(rows - full * NR, cols, w + (size_t)full * NR * (size_t)cols,
                  packed + (size_t)full * NR * (size_t)cols);
}

void mn_fixed_pack(int rows, int cols, const float *w, float *packed) {
  if (have_avx2())
    pack_avx2(rows, cols, w, packed);
  else
    pack_portable(rows, cols, w, packed);
}

void mn_fixed_gemm(const mn_fixed_gemm_args *g) {
  if (have_avx2())
    gemm_avx2(g);
  else
    mn_fixed_gemm_portable(g);
}
#else
void mn_fixed_gemm(const mn_fixed_gemm_args *g) { mn_fixed_gemm_portable(g); }
void mn_fixed_pack(int rows, int cols, const float *w, float *packed) {
  pack_portable(rows, cols, w, packed);
}
#endif
