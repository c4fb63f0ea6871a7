/* trainer.h: the state of one `mpinet train` run, shared by the files that make up the
 * trainer: train.c (the loop), train_setup.c (before and after it), resume.c (the start
 * state, checkpoints), report.c (evaluation, metrics.jsonl, progress lines), sync_setup.c
 * (choosing gradient buckets), repro.c (reproducible mode) and forward_loss.c (a batch's
 * forward pass and loss, which the last two share with the loop). Not a public interface. */
#ifndef MN_TRAINER_H
#define MN_TRAINER_H

#include <stdbool.h>
#include <stdio.h>

#include "checkpoint.h"
#include "compress.h"
#include "config.h"
#include "dataset.h"
#include "evaluate.h"
#include "grad_sync.h"
#include "job.h"
#include "loader.h"
#include "net.h"
#include "repro.h"
#include "sampler.h"
#include "shared_rows.h"
#include "stream.h"
#include "timeline.h"
#include "world.h"

typedef struct trainer {
  mn_world w;
  mn_config cfg;
  mn_settings s;
  mn_source src;      /* the training rows' files, layout and normalisation */
  mn_source test_src; /* the test rows', when has_test */
  bool has_test;      /* there are test rows to evaluate on */
  char *normalisation_json; /* rank 0: RUN_DIR/normalisation.json's text, or NULL */
  mn_split train;
  mn_shared_rows shared_rows; /* global mode: the node's one copy of train's rows */
  mn_eval_set test; /* read a chunk at a time at each evaluation */
  mn_sampler sampler;
  mn_net net;
  char *config_text; /* effective config, written to the run dir and checkpoints */
  mn_loader loader;  /* training batches, prefetched */
  mn_augment augment; /* [augment], applied by the loader */
  mn_stream stream;  /* shard streamed from the file ([data] memory_mb), if opened */
  bool streaming;
  bool stream_background; /* its reader yields to every other thread (stream.h) */
  int threads;         /* BLAS threads per rank (train.threads, OPENBLAS_NUM_THREADS, else 1) */
  mn_grad_sync sync;   /* bucketed gradient allreduce */
  mn_node_reduce node; /* or the sum in the node's shared memory (sync.node points here) */
  float *own_grads;    /* the network's own gradient buffer while it is bound to node's */
  mn_err node_err;     /* why it is not, when it could have been (else msg is "") */
  mn_compress comp;    /* [train] grad_compression, when MPI carries gradients (compressing) */
  bool compressing;
  char comp_note[160];  /* why grad_compression is not used here, or "" */
  bool local_step;      /* this step is a local SGD step ([train] sync_every): no gradient sum, the
                           loss scaled by this rank's rows instead of the global batch */
  mn_ckpt_meta resumed; /* rank 0: the resumed checkpoint's residuals (kind, rows), until used */
  mn_timeline tl;      /* [train] timeline_steps */
  mn_repro repro;      /* [train] reproducible: micro-batch buffers and the summation tree */
  float *ex;           /* evaluation batch buffers, eval_batch rows */
  int32_t *ey;
  float *et;
  long long resumed_bucket; /* bucket size the resumed checkpoint was written with */
  bool resumed_overlap;     /* and whether it overlapped */
  int tune_candidates;      /* bucket configurations timed at start-up (0: none) */
  uint32_t layout_hash;     /* 24 bits of the gradient buffer's layout (step_record.h) */
  long long fault_step;     /* test hook MPINET_FAULT (train.c setup): its step, or -1 */
  bool fault_nan;
  bool fault_stop;
  double first_step_unix;
  long long final_step;    /* where the loop ended */
  long long skipped_steps; /* steps dropped on every rank for a non-finite loss */
  int bad_layer;           /* this step: first layer with a non-finite output, or -1 (reproducible
                              mode: in the first micro-batch whose loss was not finite) */
  size_t heap_in_use;      /* allocator bytes in use after warm-up (check_allocations) */
  FILE *metrics;
  double t_start;
  bool bar; /* live progress bar (rank 0) rather than periodic lines */
  double last_test_loss, last_test_acc;
} trainer;

/* Where a step's time goes. */
enum { PHASE_DATA, PHASE_FORWARD, PHASE_BACKWARD, PHASE_COMM, PHASE_OPTIMIZER, PHASES };

typedef struct {
  double loss_sum, correct, count;
  double time[PHASES]; /* seconds this rank spent in each phase of the steps */
  /* of time[PHASE_COMM], the seconds before the node's last rank arrived at the sum (adding
   * what was ready, or waiting: load imbalance); the rest is the communication every rank
   * waited for. Measured where the node's shared memory sums (node_reduce.h). */
  double comm_before_last;
} train_sums;

/* Everything before the loop: config (the file, --set overrides, --resume's directory),
 * data, model, loader, the agreement of all ranks, the run directory. Collective; -1 after
 * the error was reported on every rank. */
int mn_trainer_setup(trainer *tr, const char *config_path, char **sets, int nsets,
                     const char *resume_dir);
/* Frees what set-up and the run took; collective (the shared gradients' window). */
void mn_trainer_teardown(trainer *tr);
/* Rank 0's summary of the run before the first step: data, model, gradient sync, batch. */
void mn_trainer_describe(const trainer *tr);
/* Parameters and optimizer state: initialised from the seed, or loaded from resume_dir's
 * latest good checkpoint; broadcast from rank 0. *step gets the step to start from. */
int mn_trainer_start_state(trainer *tr, const char *resume_dir, long long *step);
/* A checkpoint of the state after `step` (rank 0 writes, every rank agrees on the result). */
int mn_trainer_save_checkpoint(trainer *tr, long long step, long long epoch);
/* Forward pass and loss on rows [first, first + rows) of a training batch: the output
 * gradient (scaled by 1 / global batch; by 1 / the batch's rows in a local SGD step) is left
 * in mn_net_output_grad for backward, the loss sum and number correct in st; returns the network's
 * output. Sets p->sample_ids. */
const float *mn_trainer_forward_loss(trainer *tr, mn_pass *p, const mn_batch *b, size_t first,
                                     int rows, mn_loss_stats *st);
/* Wall-clock time, seconds since the epoch. */
double mn_unix_now(void);
/* This process's peak resident memory so far, MiB. */
double mn_peak_rss_mb(void);
/* Evaluates, checks the replicas, reduces train and test sums, and reports on rank 0
 * (console line and metrics.jsonl). Collective. */
int mn_trainer_report(trainer *tr, long long epoch, long long step, const train_sums *ts,
                      double train_seconds, long long samples);
/* A progress line (rank 0): a live bar or a plain line. */
void mn_trainer_progress(const trainer *tr, long long epoch, long step, double loss, double seconds,
                         long samples);
/* Reproducible mode (repro.h, repro.c). Forward and backward of this rank's micro-batches of
 * the batch, summed in the fixed tree; `local` gets this rank's loss sums (for the step
 * record) and forward_s the seconds spent in forward passes; the sum is left as net->grads
 * and scanned for NaN/inf (sync.first_bad). */
/* Checks what the mode needs (global shuffling, one BLAS thread, no SyncBN, the same GEMM
 * kernels on every rank, a world size that divides V) and allocates its buffers; after
 * mn_net_set_tail made room for the records and mn_repro_tail. Collective. */
int mn_trainer_repro_setup(trainer *tr, mn_err *err);
void mn_trainer_repro_local(trainer *tr, const mn_batch *b, mn_pass *pass, mn_loss_stats *local,
                            double *forward_s);
/* The ranks' part of the tree (collective). */
void mn_trainer_repro_allreduce(trainer *tr);
/* After the allreduce: the global batch's loss and number correct, added in micro-batch
 * order; the batch-norm statistics updated (unless the step is dropped); the tail zeroed. */
void mn_trainer_repro_apply(trainer *tr, bool update_state, mn_loss_stats *global);
/* Chooses gradient buckets and overlap (collective); see sync_setup.c. */
int mn_trainer_setup_sync(trainer *tr, long long first_step);

#endif
