/* rng.c: counter-based RNG (see rng.h for why counter-based). */
#include "rng.h"

#include <math.h>

static uint64_t splitmix_finalise(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

uint64_t mn_rng_u64(uint64_t seed, uint64_t stream, uint64_t counter) {
  uint64_t key = splitmix_finalise(seed + 0x9e3779b97f4a7c15ULL * (stream + 1));
  return splitmix_finalise(key ^ splitmix_finalise(counter + 0x632be59bd9b4e019ULL));
}

float mn_rng_uniform(uint64_t seed, uint64_t stream, uint64_t counter) {
  return (float)(mn_rng_u64(seed, stream, counter) >> 40) * (1.0f / 16777216.0f);
}

float mn_rng_normal(uint64_t seed, uint64_t stream, uint64_t counter) {
  uint64_t bits = mn_rng_u64(seed, stream, counter);
  /* two 32-bit halves -> two uniforms in (0, 1] and [0, 1) */
  double u1 = ((double)(bits >> 32) + 1.0) / 4294967296.0;
  double u2 = (double)(bits & 0xffffffffu) / 4294967296.0;
  return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

uint32_t mn_rng_below(uint64_t seed, uint64_t stream, uint64_t counter, uint32_t n) {
  /* Lemire's multiply-shift on the high 32 bits: bias < n / 2^32, irrelevant for shuffles. */
  uint64_t r = mn_rng_u64(seed, stream, counter) >> 32;
  return (uint32_t)((r * n) >> 32);
}

void mn_rng_permutation(uint32_t *perm, uint32_t n, uint64_t seed, uint64_t stream,
                        uint64_t counter) {
  for (uint32_t i = 0; i < n; i++) perm[i] = i;
  /* Fisher-Yates; each swap draws from its own counter so the result is a pure function. */
  uint64_t base = splitmix_finalise(counter) ^ (uint64_t)n;
  for (uint32_t i = n; i > 1; i--) {
    uint32_t j = mn_rng_below(seed, stream, base + i, i);
    uint32_t t = perm[i - 1];
    perm[i - 1] = perm[j];
    perm[j] = t;
  }
}
