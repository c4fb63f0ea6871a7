/* test_sampler.c: the counter-based RNG and the distributed sampler.
 * - permutations are permutations, and a pure function of (seed, epoch);
 * - global mode: the ranks' parts of a step, concatenated in rank order, are exactly the
 *   1-rank batch of that step, at N = 2 to 7, also when N does not divide the batch: each
 *   rank then takes floor(B/N) or ceil(B/N) rows, and over every N steps the same number;
 * - shard mode: each rank only indexes its own rows, shards tile the data, every rank has
 *   the same number of steps even when n does not divide, and with uneven shares a step
 *   starts where the last ended and never runs past the shard. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "rng.h"
#include "sampler.h"

static void test_permutation(void) {
  enum { N = 1000 };
  uint32_t a[N], b[N], c[N];
  mn_rng_permutation(a, N, 5, MN_STREAM_SHUFFLE, 3);
  mn_rng_permutation(b, N, 5, MN_STREAM_SHUFFLE, 3);
  mn_rng_permutation(c, N, 5, MN_STREAM_SHUFFLE, 4);
  CHECK(memcmp(a, b, sizeof a) == 0, "same (seed, epoch) gave different orders");
  CHECK(memcmp(a, c, sizeof a) != 0, "different epochs gave the same order");
  char seen[N] = {0};
  int fixed = 0;
  for (int i = 0; i < N; i++) {
    CHECK(a[i] < N && !seen[a[i]], "not a permutation at %d", i);
    if (a[i] < N) seen[a[i]] = 1;
    fixed += a[i] == (uint32_t)i;
  }
  CHECK(fixed < 20, "%d fixed points: not shuffled", fixed);
  double mean = 0;
  for (int i = 0; i < 10000; i++) mean += mn_rng_uniform(1, 2, (uint64_t)i);
  mean /= 10000;
  CHECK(mean > 0.48 && mean < 0.52, "uniform mean %g", mean);
}

static void test_global_mode_matches_one_rank(void) {
  const size_t rows = 1000;
  mn_err err;
  for (int batch = 24; batch <= 128; batch += 104) {
    mn_sampler one;
    CHECK(mn_sampler_init(&one, MN_SHUFFLE_GLOBAL, 0, 1, 9, rows, batch, &err) == 0, "%s", err.msg);
    for (int size = 2; size <= 7; size++) {
      mn_sampler part[7];
      for (int r = 0; r < size; r++)
        mn_sampler_init(&part[r], MN_SHUFFLE_GLOBAL, r, size, 9, rows, batch, &err);
      int taken[7] = {0}; /* rows each rank took in the last `size` steps */
      for (long epoch = 0; epoch < 2; epoch++)
        for (long step = 0; step < one.steps_per_epoch; step++) {
          if (step == 0) memset(taken, 0, sizeof taken);
          uint32_t whole[128], pieces[128];
          mn_sampler_batch(&one, epoch, step, NULL, whole);
          int at = 0;
          for (int r = 0; r < size; r++) {
            CHECK(part[r].steps_per_epoch == one.steps_per_epoch, "steps differ");
            const int n = mn_sampler_batch(&part[r], epoch, step, NULL, pieces + at);
            CHECK(n == batch / size || n == batch / size + 1, "N=%d rank %d takes %d of %d", size,
                  r, n, batch);
            at += n;
            taken[r] += n;
          }
          CHECK(at == batch, "N=%d: the ranks take %d rows of a batch of %d", size, at, batch);
          CHECK(memcmp(whole, pieces, (size_t)batch * sizeof *whole) == 0,
                "N=%d batch %d epoch %ld step %ld differs", size, batch, epoch, step);
          if ((step + 1) % size == 0) { /* every N steps of an epoch, the same rows each */
            for (int r = 0; r < size; r++)
              CHECK(taken[r] == batch, "N=%d rank %d took %d rows in %d steps (want %d)", size, r,
                    taken[r], size, batch);
            memset(taken, 0, sizeof taken);
          }
        }
      for (int r = 0; r < size; r++) mn_sampler_free(&part[r]);
    }
    mn_sampler_free(&one);
  }
}

static void test_shard_mode(void) {
  const size_t rows = 1003; /* not divisible by 2, 3, 4, 5, 6 or 7 */
  mn_err err;
  for (int size = 2; size <= 7; size++)
    for (int batch = 12 * size; batch <= 12 * size + 5; batch += 5) { /* even, then not */
      size_t covered = 0;
      long steps = -1;
      for (int r = 0; r < size; r++) {
        mn_sampler s;
        CHECK(mn_sampler_init(&s, MN_SHUFFLE_SHARD, r, size, 9, rows, batch, &err) == 0, "%s",
              err.msg);
        CHECK(s.held_begin == covered, "shard %d starts at %zu, expected %zu", r, s.held_begin,
              covered);
        covered += s.held;
        if (steps < 0) steps = s.steps_per_epoch;
        CHECK(s.steps_per_epoch == steps, "rank %d has %ld steps, rank 0 %ld", r, s.steps_per_epoch,
              steps);
        for (long epoch = 0; epoch < 3; epoch++) {
          size_t next = 0; /* each step starts where the last ended, inside the shard */
          for (long step = 0; step < s.steps_per_epoch; step++) {
            uint32_t idx[20];
            size_t pos;
            const int n = mn_sampler_batch(&s, epoch, step, &pos, idx);
            CHECK(pos == next, "N=%d rank %d step %ld: a gap", size, r, step);
            next += (size_t)n;
            CHECK(next <= s.held, "N=%d B=%d rank %d ran out of rows at step %ld", size, batch, r,
                  step);
            for (int i = 0; i < n; i++) CHECK(idx[i] < s.held, "index outside the shard");
          }
        }
        mn_sampler_free(&s);
      }
      CHECK(covered == rows, "shards cover %zu of %zu rows", covered, rows);
      /* the smallest shard nearly runs out: one step more would not fit some rotation */
      CHECK((size_t)(steps + 1) * (size_t)batch / (size_t)size > rows / (size_t)size - batch,
            "N=%d B=%d: %ld steps leave too much of the shard unused", size, batch, steps);
    }
}

static void test_too_little_data(void) {
  mn_sampler s;
  mn_err err;
  CHECK(mn_sampler_init(&s, MN_SHUFFLE_GLOBAL, 0, 1, 1, 10, 64, &err) != 0,
        "a batch larger than the data was accepted");
  mn_sampler_free(&s);
}

int main(void) {
  test_permutation();
  test_global_mode_matches_one_rank();
  test_shard_mode();
  test_too_little_data();
  return check_report("test_sampler");
}
