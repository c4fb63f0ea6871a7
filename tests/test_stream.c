#define _POSIX_C_SOURCE 200809L /* mkstemp, clock_gettime */
/* test_stream.c: the shard stream (stream.h) against a file whose rows say who they are:
 * row i holds the value i in every column and label i % K. One epoch must hand out every
 * row of the shard exactly once (up to the dropped tail) with its own values and label; the
 * order must be shuffled across windows and blocks, differ between epochs, repeat exactly
 * when the stream is opened again, and a gather that starts mid-epoch (a resumed run) must
 * see what the uninterrupted one saw. A budget below two chunks is refused. A reader in the
 * background (idle priority) serves the same rows; starved of CPU time (mn_stream_starve, a
 * test hook), it is replaced by one at normal priority, and the rows are still the same. A
 * file replaced mid-run is refused at the next window. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "clock.h"
#include "h5_writer.h"
#include "h5util.h"
#include "stream.h"

enum { ROWS = 6000, F = 256, K = 7, BEGIN = 700, N = 5000 };

static void gather_epoch(mn_stream *s, long long epoch, size_t from, size_t count, float *x,
                         int32_t *y, uint64_t *ids) {
  for (size_t at = from; at < from + count; at += 37) {
    int m = (int)(from + count - at < 37 ? from + count - at : 37);
    CHECK(mn_stream_gather(s, epoch, at, m, x + (at - from) * F, y + (at - from), NULL,
                           ids + (at - from)) == 0,
          "gather failed: %s", s->error);
  }
}

int main(void) {
  char path[] = "/tmp/mpinet-test-stream-XXXXXX";
  int fd = mkstemp(path);
  close(fd);
  float *x = malloc((size_t)ROWS * F * sizeof *x);
  int32_t *y = malloc(ROWS * sizeof *y);
  for (size_t i = 0; i < ROWS; i++) {
    for (size_t j = 0; j < F; j++) x[i * F + j] = (float)i;
    y[i] = (int32_t)(i % K);
  }
  mn_split_data split = {.x = x, .rank = 2, .dims = {ROWS, F}, .labels = y};
  mn_dataset_attrs attrs = {.classes = K, .scale = 1.0, .source = "test_stream"};
  mn_err err;
  CHECK(mn_dataset_write(path, &split, &split, &attrs, &err) == 0, "%s", err.msg);
  mn_source src;
  CHECK(mn_source_open_split(&src, path, "train", &err) == 0, "%s", err.msg);

  /* rows of 1 KiB: 1024-row chunks; blocks follow the file's chunks, so rows [700, 5700)
   * are 6 blocks ([700, 1024) the first); a budget of two 2-block windows */
  mn_stream s;
  const size_t budget = 2 * 2 * 1024 * (F * sizeof(float) + 16) + 100;
  CHECK(mn_stream_open(&s, &src, BEGIN, N, budget, 42, 1, &err) == 0, "%s", err.msg);
  CHECK(s.block_rows == 1024 && s.nblocks == 6 && s.block_first[1] == 1024 &&
            s.window_blocks == 2 && s.nwindows == 3,
        "plan: %zu rows/block, %zu blocks, %zu per window", s.block_rows, s.nblocks,
        s.window_blocks);
  float *bx = malloc((size_t)N * F * sizeof *bx);
  int32_t *by = malloc(N * sizeof *by);
  uint64_t *ids = malloc(N * sizeof *ids), *first = malloc(N * sizeof *first);
  gather_epoch(&s, 0, 0, N, bx, by, ids);
  char *seen = calloc(ROWS, 1);
  int bad = 0, in_order = 0;
  for (size_t i = 0; i < N; i++) {
    const uint64_t id = ids[i];
    if (id < BEGIN || id >= BEGIN + N || seen[id]++) bad++;
    if (bx[i * F] != (float)id || bx[i * F + F - 1] != (float)id || by[i] != (int32_t)(id % K))
      bad++;
    if (i > 0 && ids[i] == ids[i - 1] + 1) in_order++;
  }
  CHECK(bad == 0, "%d rows wrong, repeated or outside the shard", bad);
  CHECK(in_order < N / 50, "%d neighbours in file order: not shuffled", in_order);
  CHECK(ids[0] != BEGIN || ids[1] != BEGIN + 1, "starts in file order");
  memcpy(first, ids, N * sizeof *ids);

  gather_epoch(&s, 1, 0, N, bx, by, ids);
  CHECK(memcmp(first, ids, N * sizeof *ids) != 0, "epoch 1 repeats epoch 0's order");
  mn_stream_close(&s);

  /* opened again, the reader in the background: the same order; and from the middle of the
   * epoch (a resume) too */
  CHECK(mn_stream_open(&s, &src, BEGIN, N, budget, 42, 1, &err) == 0, "%s", err.msg);
  CHECK(mn_stream_set_background(&s), "the reader did not take idle priority");
  gather_epoch(&s, 0, 3001, N - 3001, bx, by, ids);
  CHECK(memcmp(first + 3001, ids, (N - 3001) * sizeof *ids) == 0, "a mid-epoch start differs");
  gather_epoch(&s, 0, 0, N, bx, by, ids);
  CHECK(memcmp(first, ids, N * sizeof *ids) == 0, "reopened: another order");
  mn_stream_close(&s);

  /* a background reader that gets no CPU (the test hook holds it, as threads busy on every
   * CPU would, but without depending on who wins the CPUs) is replaced by one at normal
   * priority, and the rows are the same */
  CHECK(mn_stream_open(&s, &src, BEGIN, N, budget, 42, 1, &err) == 0, "%s", err.msg);
  CHECK(mn_stream_set_background(&s), "the reader did not take idle priority");
  mn_stream_starve(&s);
  const double t0 = mn_now_s();
  gather_epoch(&s, 0, 0, N, bx, by, ids);
  const double took = mn_now_s() - t0;
  printf("an epoch with the background reader starved: %.2f s, reader replaced: %s\n", took,
         s.demoted ? "yes" : "no");
  CHECK(s.demoted && !s.background, "the starved background reader was not replaced");
  CHECK(memcmp(first, ids, N * sizeof *ids) == 0, "after the replacement: another order");
  mn_stream_close(&s);

  /* another rank: another order over its own rows */
  CHECK(mn_stream_open(&s, &src, BEGIN, N, budget, 42, 2, &err) == 0, "%s", err.msg);
  gather_epoch(&s, 0, 0, N, bx, by, ids);
  CHECK(memcmp(first, ids, N * sizeof *ids) != 0, "rank 2 has rank 1's order");
  mn_stream_close(&s);

  /* the file replaced mid-run (a new file renamed over it, as the converters write): the
   * stream keeps the old file open, but a window read after the change refuses it */
  CHECK(mn_stream_open(&s, &src, BEGIN, N, budget, 42, 1, &err) == 0, "%s", err.msg);
  CHECK(mn_stream_gather(&s, 0, 0, 37, bx, by, NULL, ids) == 0, "gather failed: %s", s.error);
  /* the reader may be reading ahead in HDF5, which is not thread-safe: the lock, as the
   * trainer's own HDF5 calls take it while a stream is open (without it, ~5% of runs crashed
   * in HDF5 or read garbage) */
  mn_h5_lock();
  const int written = mn_dataset_write(path, &split, &split, &attrs, &err);
  mn_h5_unlock();
  CHECK(written == 0, "%s", err.msg);
  int rc = 0;
  size_t served = 0;
  for (long long epoch = 0; epoch < 2 && rc == 0; epoch++)
    for (size_t at = 0; at + 37 <= N && rc == 0; at += 37, served += rc == 0 ? 37 : 0)
      rc = mn_stream_gather(&s, epoch, at, 37, bx, by, NULL, ids);
  CHECK(rc != 0 && strstr(s.error, "changed since the job started (streaming reads it again)"),
        "a replaced file was streamed from (%zu rows served): '%s'", served, s.error);
  mn_stream_close(&s);

  CHECK(mn_stream_open(&s, &src, BEGIN, N, 1 << 20, 42, 1, &err) != 0 &&
            strstr(err.msg, "memory_mb = 1.0 is too small to stream /train"),
        "a budget below two chunks: %s", err.msg);
  mn_stream_close(&s);

  mn_source_free(&src);
  unlink(path);
  free(x), free(y), free(bx), free(by), free(ids), free(first), free(seen);
  return check_report("test_stream");
}
