/* job.h: turning a config text into settings and a model, identically on every rank.
 *
 * Rank 0 reads the config file and broadcasts its bytes; every rank parses the same text
 * and applies the same --set overrides, so all ranks reach the same verdict on every key. */
#ifndef MN_JOB_H
#define MN_JOB_H

#include "augment.h"
#include "config.h"
#include "dataset.h"
#include "net.h"
#include "optim.h"
#include "sampler.h"

typedef enum { MN_PROGRESS_AUTO, MN_PROGRESS_BAR, MN_PROGRESS_LINES } mn_progress;

/* [train] allreduce: how gradients are summed across ranks */
typedef enum {
  MN_ALLREDUCE_AUTO, /* in each node's shared memory (then across nodes by MPI) when every
                        node holds the same number, 2 or more, of ranks; else MPI buckets */
  MN_ALLREDUCE_NODE, /* in shared memory, or fail saying why not */
  MN_ALLREDUCE_MPI,  /* MPI_Iallreduce buckets (bucket_mb, overlap) */
} mn_allreduce_mode;

typedef struct {
  /* [data]: what to read (source.h) */
  const char *data_path;                   /* path: file, glob, directory or comma list */
  const char *data_x, *data_y;             /* x, y: datasets in each file */
  const char *test_path, *test_x, *test_y; /* test_path (default: path), test_x, test_y */
  bool test_explicit;                      /* one of test_path, test_x, test_y was given */
  double test_fraction;                    /* test_fraction: 0, or rows held out of training */
  long split_seed;                         /* split_seed: which rows test_fraction holds out */
  mn_layout layout;                        /* layout */
  mn_normalise normalise;                  /* normalise */
  long classes;                            /* classes: 0 = the files' attribute */
  long max_open_files;                     /* max_open_files: per reader */
  bool standardise_targets;                /* standardise_targets: train on (t - mean) / std */
  bool share_memory; /* share_memory: global mode holds the rows once per node */
  mn_shuffle_mode shuffle;
  long epochs, batch, max_steps, eval_batch, seed, progress_s;
  mn_loss_kind loss;
  mn_progress progress;
  const char *run_dir;
  long every_epochs, keep;
  long eval_every_steps; /* [train] eval_every_steps: also evaluate every N steps, 0 = off */
  double memory_mb; /* [data] memory_mb: training rows a rank may hold; 0 = no cap (shard
                       mode streams a larger shard from the file, stream.h) */
  int prefetch;     /* [data] prefetch: assemble the next batch on a thread: 0 false, 1 true,
                       2 auto = only when this node has a core to spare for the thread */
  mn_allreduce_mode allreduce; /* [train] allreduce */
  bool overlap;     /* [train] overlap: all-reduce gradient buckets during backward */
  double bucket_mb; /* [train] bucket_mb: 0 = auto (timed at start-up) */
  long threads;     /* [train] threads: BLAS threads per rank, 0 = OPENBLAS_NUM_THREADS or 1 */
  bool check_allocations; /* [train] check_allocations: fail if a step allocates */
  double watchdog_s;      /* [train] watchdog_seconds: 0 = off */
  bool skip_nonfinite;    /* [train] on_nonfinite = skip (default stop) */
  bool check_gradients;   /* [train] check_gradients: scan local gradients for NaN/inf */
  long timeline_steps;    /* [train] timeline_steps: steps in RUN_DIR/timeline.json, 0 = off */
  bool reproducible;      /* [train] reproducible: same bits at any power-of-two world size */
  long virtual_shards;    /* [train] virtual_shards: micro-batches per global batch (V) */
  int grad_compression;   /* [train] grad_compression: mn_compress_kind (compress.h) */
  long sync_every;        /* [train] sync_every: local SGD, average replicas every K steps */
  double sync_warmup_epochs; /* [train] sync_warmup_epochs: synchronous steps before that */
  mn_optimizer opt;
} mn_settings;

/* Parses the text and applies the overrides (count of them in nsets). */
int mn_job_parse(mn_config *cfg, const char *path, const char *text, char **sets, int nsets,
                 mn_err *err);
/* Reads [data], [train] and [checkpoint]. */
int mn_job_settings(mn_config *cfg, mn_settings *s, mn_err *err);
/* The training rows' and the test rows' source specs the settings name. */
mn_source_spec mn_job_train_spec(const mn_settings *s);
mn_source_spec mn_job_test_spec(const mn_settings *s);
/* Reads [augment] into aug (NULL: read and checked, not kept: eval and predict) and builds
 * the network for the data's sample shape and class count; then rejects any key no one
 * asked for. */
int mn_job_model(mn_config *cfg, const mn_settings *s, const mn_split_info *info, int max_batch,
                 mn_net *net, mn_augment *aug, mn_err *err);

#endif
