/* stream.h: shard-mode training data larger than a rank's memory budget, streamed from the
 * HDF5 file ([data] memory_mb).
 *
 * A rank's shard (rows [begin, begin + n) of the split) is cut into blocks of one HDF5 chunk
 * of rows, so every block read decompresses whole chunks once. Each epoch visits the blocks
 * in an order drawn from (seed, epoch, rank), W blocks at a time (a window; W is chosen so
 * that two windows fit the budget), and the rows inside a window are shuffled. A reader
 * thread fills the next window while the current one is served, so reading and
 * decompressing overlap training when a core is free for it. The order of an epoch is a pure
 * function of (seed, epoch, rank): a resumed run sees the batches the uninterrupted one saw.
 *
 * Libhdf5's parallel build is not thread-safe: the reader takes mn_h5_lock() around its HDF5
 * calls, as does every HDF5 call the main thread makes while a stream is open. */
#ifndef MN_STREAM_H
#define MN_STREAM_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dataset.h"

typedef struct {
  mn_split data;  /* window_rows rows (x, labels or targets) */
  uint64_t *ids;  /* dataset row of each */
  uint32_t *perm; /* the shuffled order of the window's rows */
  size_t rows;    /* rows it holds */
  long long id;   /* epoch * nwindows + window, -1: none */
  bool ready;
} mn_stream_window;

typedef struct {
  mn_split meta; /* path, split, info, row_len, a, b of the file (no rows held) */
  size_t begin, n, row_bytes;
  size_t block_rows, nblocks, window_blocks, nwindows, window_rows;
  uint64_t seed;
  int rank;
  mn_stream_window win[2];
  /* the consumer's view of an epoch: block order and where each window starts */
  long long epoch;
  uint32_t *order;
  size_t *start; /* nwindows + 1 */
  /* the reader's own copy (it may be a window ahead, in the next epoch) */
  long long reader_epoch;
  uint32_t *reader_order;
  long long current; /* the window being consumed: never evicted */
  long long need;    /* a window the consumer waits for, -1: none */
  long long next;    /* a window worth reading ahead, -1: none */
  bool stop, failed, running;
  char error[512];
  pthread_t thread;
  pthread_mutex_t mu;
  pthread_cond_t cv;
} mn_stream;

/* Plans the stream for rows [begin, begin + n) of `split` within `budget` bytes (two windows)
 * and starts the reader thread. */
int mn_stream_open(mn_stream *s, const char *path, const char *split, size_t begin, size_t n,
                   size_t budget, uint64_t seed, int rank, mn_err *err);
/* Rows at positions [pos, pos + count) of epoch `epoch`'s order, converted like
 * mn_split_gather(); ids get their dataset rows. Blocks while a window is being read;
 * returns -1 (and the message in s->error) if reading failed. */
int mn_stream_gather(mn_stream *s, long long epoch, size_t pos, int count, float *x,
                     int32_t *labels, float *targets, uint64_t *ids);
void mn_stream_close(mn_stream *s);

#endif
