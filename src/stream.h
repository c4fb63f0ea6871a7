/* stream.h: shard-mode training data larger than a rank's memory budget, streamed from the
 * HDF5 file ([data] memory_mb).
 *
 * A rank's shard (rows [begin, begin + n) of the source) is cut into blocks of one HDF5 chunk
 * of rows (never across files), so every block read decompresses whole chunks once. Each epoch
 * visits the blocks in an order drawn from (seed, epoch, rank), W blocks at a time (a window; W is
 * chosen so that two windows fit the budget), and the rows inside a window are shuffled. A reader
 * thread fills the next window while the current one is served, so reading and
 * decompressing overlap training when a core is free for it. The order of an epoch is a pure
 * function of (seed, epoch, rank): a resumed run sees the batches the uninterrupted one saw.
 *
 * Reading and checking a window takes CPU: 0.3-0.5 ms per 1 MiB chunk with a core of its own
 * here, 0.5-1.1 ms sharing the rank's core (the copies through HDF5's filter pipeline; the
 * Fletcher-32 check is not measurably part of it). When the rank has a CPU to spare,
 * mn_stream_set_background() makes the reader yield to every other thread (SCHED_IDLE): at
 * normal priority, running beside the training thread, it delayed the prefetch thread's next
 * batch by 1-3.6 ms at most window changes. `pending` tells the prefetch thread when to stop
 * polling, so that the spare CPU is the reader's. A CPU that looked spare may not be (another
 * job on it): a consumer that waits for the background reader while it gets under half of the
 * wait's CPU time replaces it with a reader at normal priority (the old one stops after its
 * current block; a thread cannot raise its own priority back without privileges), once, and
 * `demoted` says so.
 *
 * Libhdf5's parallel build is not thread-safe: the reader takes mn_h5_lock() around its HDF5
 * calls, as does every HDF5 call the main thread makes while a stream is open. */
#ifndef MN_STREAM_H
#define MN_STREAM_H

#include <pthread.h>
#include <stdatomic.h>
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
  const mn_source *src; /* the files, layout and normalisation */
  /* the files, open as long as the stream (up to the source's max_open, least recently used
   * closed first): opening a file for each block (HDF5's superblock, chunk index, the file
   * lock) took three times the block's read */
  mn_source_reader *file;
  size_t begin, n, row_bytes;
  size_t *block_first; /* nblocks + 1: the source row where each block starts */
  size_t block_rows;   /* the largest block's rows */
  size_t nblocks, window_blocks, nwindows, window_rows;
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
  long long current;   /* the window being consumed: never evicted */
  long long need;      /* a window the consumer waits for, -1: none */
  long long next;      /* a window worth reading ahead, -1: none */
  atomic_bool pending; /* a window is asked for and not yet read */
  atomic_bool retire;  /* the background reader is to stop after its current block */
  bool background;     /* the reader runs at idle priority (mn_stream_set_background) */
  bool demoted;        /* it was starved and replaced by one at normal priority */
  bool starve;         /* test hook: the background reader gets no CPU (mn_stream_starve) */
  bool stop, failed, running;
  char error[512];
  pthread_t thread;
  pthread_mutex_t mu;
  pthread_cond_t cv;
} mn_stream;

/* Plans the stream for source rows [begin, begin + n) within `budget` bytes (two windows)
 * and starts the reader thread. Blocks are the source's (mn_source_blocks: an HDF5 chunk,
 * never across files), so many small files stream as one large one. */
int mn_stream_open(mn_stream *s, const mn_source *src, size_t begin, size_t n, size_t budget,
                   uint64_t seed, int rank, mn_err *err);
/* Lets the reader run only on CPU time no other thread wants (SCHED_IDLE, Linux): for a rank
 * with a CPU that neither it nor its BLAS threads take. One-way; returns whether it took. */
bool mn_stream_set_background(mn_stream *s);
/* Test hook: from now on the background reader behaves as one that gets no CPU time. It
 * sleeps before its next read until it is replaced, for 5 s at most, so that the starvation
 * check is driven directly instead of by threads that may or may not win the CPUs (and a
 * stream whose replacement is broken ends its test with a verdict, not a hang). A reader at
 * normal priority, the replacement included, is not held. */
void mn_stream_starve(mn_stream *s);
/* Whether a starved background reader was replaced (then the reader is no longer one). */
bool mn_stream_demoted(mn_stream *s);
/* Whether the reader has a window to read: a thread polling on the spare CPU should sleep. */
static inline bool mn_stream_pending(mn_stream *s) { return atomic_load(&s->pending); }
/* Rows at positions [pos, pos + count) of epoch `epoch`'s order, converted like
 * mn_split_gather(); ids get their dataset rows. Blocks while a window is being read;
 * returns -1 (and the message in s->error) if reading failed. */
int mn_stream_gather(mn_stream *s, long long epoch, size_t pos, int count, float *x,
                     int32_t *labels, float *targets, uint64_t *ids);
void mn_stream_close(mn_stream *s);

#endif
