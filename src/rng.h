/* rng.h: a counter-based random number generator.
 *
 * A random number is a pure function of (seed, stream, counter): no state to carry, save or
 * synchronise. Weight init uses (seed, layer stream, element index); the data order uses
 * (seed, epoch); dropout will use (seed, step, layer, global sample index). So an N-rank run
 * draws exactly what a 1-rank run draws, and a resumed run draws what the uninterrupted one
 * would have. The mixer is SplitMix64's finaliser applied twice over a combined key, which
 * passes BigCrush as a counter-based generator. */
#ifndef MN_RNG_H
#define MN_RNG_H

#include <stdint.h>

/* Streams keep unrelated uses apart. */
enum {
  MN_STREAM_INIT = 1,    /* weight initialisation: stream + layer index */
  MN_STREAM_SHUFFLE = 2, /* data order: counter = epoch */
  MN_STREAM_DROPOUT = 3,
  MN_STREAM_DATA = 4,    /* synthetic data generators */
  MN_STREAM_HOLDOUT = 5, /* [data] test_fraction: which blocks are held out */
  MN_STREAM_AUGMENT = 6, /* [augment]: counter = epoch, then (row, draw) (augment.h) */
};

uint64_t mn_rng_u64(uint64_t seed, uint64_t stream, uint64_t counter);
/* Uniform in [0, 1) with 24 random bits (exactly representable as float). */
float mn_rng_uniform(uint64_t seed, uint64_t stream, uint64_t counter);
/* Standard normal (Box-Muller over two derived counters). */
float mn_rng_normal(uint64_t seed, uint64_t stream, uint64_t counter);
/* Uniform integer in [0, n) without modulo bias worth speaking of (n < 2^32). */
uint32_t mn_rng_below(uint64_t seed, uint64_t stream, uint64_t counter, uint32_t n);

/* Fills perm[0..n) with a permutation that depends only on (seed, stream, counter). */
void mn_rng_permutation(uint32_t *perm, uint32_t n, uint64_t seed, uint64_t stream,
                        uint64_t counter);

#endif
