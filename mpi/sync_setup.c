/* sync_setup.c: how the trainer sums gradients: in the nodes' shared memory (node_reduce.h),
 * or in MPI buckets, whose size and overlap are as configured, as a resumed run had them, by
 * a fixed rule at 3+ ranks, or timed on this very model at 2 ranks with dry steps that
 * change nothing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "trainer.h"

/* One training step's forward and backward on the first batch, with nothing kept: the
 * gradients are zeroed and batch-norm statistics restored afterwards (timing runs only). */
typedef struct {
  trainer *tr;
  const mn_batch *batch;
  float *state_copy;
  int calls;
} dry_run;

static void dry_step(void *user) {
  dry_run *d = user;
  trainer *tr = d->tr;
  mn_net *net = &tr->net;
  const int lb = d->batch->count;
  mn_pass pass = {
      .training = true,
      .seed = (uint64_t)tr->s.seed,
      .allreduce_sum = mn_allreduce_doubles,
      .allreduce_user = &tr->w,
      .listen = {.grads_ready = mn_grad_sync_ready, .grads_user = &tr->sync, .grads_blocks = 4}};
  mn_loss_stats st;
  mn_trainer_forward_loss(tr, &pass, d->batch, 0, lb, &st);
  mn_grad_sync_begin(&tr->sync);
  mn_net_backward(net, &pass, d->batch->x, lb, NULL);
  mn_grad_sync_finish(&tr->sync);
  mn_net_zero_grads(net);
  memcpy(net->state, d->state_copy, net->nstate * sizeof(float));
  d->calls++;
}

/* Floats per chunk of a shared-memory sum (node_reduce.h): 64 KB, well inside L2, and
 * enough chunks in the MLP's 0.94 MB for the ranks to share the adding. */
#define NODE_CHUNK ((size_t)16384)

/* Gradient buckets and overlap: in the nodes' shared memory (then across nodes by MPI) when
 * every node holds the same number, 2 or more, of ranks (train.allreduce = auto or node;
 * node_reduce.h); otherwise as configured; as the resumed run had them (the same
 * reduction order keeps the bits); or, by default, timed on this model and communicator
 * before the first step at 2 ranks (mn_grad_sync_tune: dry steps that change nothing) and
 * by a fixed rule at 3+ ranks. */
static int choose(trainer *tr, long long first_step) {
  mn_settings *s = &tr->s;
  /* the gradients scanned for NaN/inf before they are sent (train.check_gradients) */
  const size_t n = tr->net.nparams + tr->net.tail, g = s->check_gradients ? tr->net.nparams : 0;
  if (s->reproducible) { /* the tree of repro.h replaces buckets: nothing to choose */
    mn_grad_sync_init(&tr->sync, &tr->w, tr->net.grads, n, g, n, false);
    s->overlap = false;
    return 0;
  }
  if (s->allreduce != MN_ALLREDUCE_MPI && tr->w.size > 1) {
    mn_err *err = &tr->node_err;
    const char *why;
    int rc = -1;
    if (!mn_node_reduce_possible(&tr->w, &why))
      mn_fail(err, "%s", why);
    else
      rc = mn_node_reduce_init(&tr->node, &tr->w, n, NODE_CHUNK, err);
    if (rc == 0) {
      tr->own_grads = tr->net.grads;
      mn_net_bind_grads(&tr->net, mn_node_reduce_own(&tr->node));
      mn_release_pages(tr->own_grads, n * sizeof(float));
      mn_grad_sync_init(&tr->sync, &tr->w, tr->net.grads, n, g, n, true);
      mn_grad_sync_use_node(&tr->sync, &tr->node);
      s->overlap = true;
      return 0;
    }
    if (s->allreduce == MN_ALLREDUCE_NODE) { /* every rank has the same answer */
      mn_cfg_section *train = mn_config_section(&tr->cfg, "train");
      char where[700];
      mn_cfg_where(train, mn_cfg_find(train, "allreduce"), where, sizeof where);
      if (tr->w.rank == 0)
        fprintf(stderr, "mpinet: error: %s: node: cannot sum in shared memory: %s\n", where,
                err->msg);
      return -1;
    }
  }
  if (s->bucket_mb > 0.0 || tr->w.size == 1) {
    size_t bucket = s->bucket_mb > 0.0 ? (size_t)(s->bucket_mb * 1e6 / 4) : n;
    mn_grad_sync_init(&tr->sync, &tr->w, tr->net.grads, n, g, bucket < 1024 ? 1024 : bucket,
                      s->overlap);
    return 0;
  }
  if (tr->resumed_bucket > 0) {
    s->overlap = tr->resumed_overlap;
    mn_grad_sync_init(&tr->sync, &tr->w, tr->net.grads, n, g, (size_t)tr->resumed_bucket,
                      s->overlap);
    return 0;
  }
  if (tr->w.size > 2) {
    /* At 3+ ranks the bucket size decides which allreduce algorithm sums which partial sums
     * first, hence the last bits: a timed choice would make two fresh runs of the same job
     * differ. A fixed rule keeps "same config + same world size = same bits": one bucket up
     * to 4 MB of gradients, else 4 MB buckets overlapped with backward. (At 2 ranks every
     * algorithm computes a + b for each element, so timing may choose freely.) */
    const size_t four_mb = (size_t)1 << 20;
    mn_grad_sync_init(&tr->sync, &tr->w, tr->net.grads, n, g, n <= four_mb ? n : four_mb,
                      n > four_mb);
    s->overlap = tr->sync.overlap;
    return 0;
  }
  dry_run d = {.tr = tr, .batch = mn_loader_next(&tr->loader, first_step)};
  d.state_copy = malloc(tr->net.nstate * sizeof(float) + 1);
  if (!d.state_copy) mn_world_abort(&tr->w, "out of memory");
  memcpy(d.state_copy, tr->net.state, tr->net.nstate * sizeof(float));
  mn_grad_sync_init(&tr->sync, &tr->w, tr->net.grads, n, g, n, false);
  dry_step(&d); /* warm-up: first touches, MPI connections */
  tr->tune_candidates = mn_grad_sync_tune(&tr->sync, dry_step, &d, 2);
  s->overlap = tr->sync.overlap;
  free(d.state_copy);
  return 0;
}

/* [train] grad_compression: on wherever MPI carries the gradients (every bucket, or the sum
 * between nodes after the node's shared-memory sum); the residuals of a resumed run at the
 * same world size and compression, or zeros. */
static int setup_compression(trainer *tr) {
  const int kind = tr->s.grad_compression;
  const mn_ckpt_meta *was = &tr->resumed; /* rank 0 */
  int rc = 0;
  mn_err err = {0};
  if (kind != MN_COMPRESS_NONE && tr->w.size == 1)
    snprintf(tr->comp_note, sizeof tr->comp_note, "1 rank sends no gradients");
  else if (kind != MN_COMPRESS_NONE && tr->sync.node && tr->node.nodes == 1)
    snprintf(tr->comp_note, sizeof tr->comp_note,
             "all %d ranks sum in one node's shared memory, no gradient crosses a network "
             "(train.allreduce = mpi would compress MPI's sums even so)",
             tr->w.size);
  else if (kind != MN_COMPRESS_NONE)
    rc = mn_compress_init(&tr->comp, (mn_compress_kind)kind, tr->net.nparams, tr->w.size, &err);
  if (mn_world_agree(&tr->w, rc, &err) != 0) return -1;
  tr->compressing = kind != MN_COMPRESS_NONE && !tr->comp_note[0];
  if (tr->compressing) mn_grad_sync_compress(&tr->sync, &tr->comp);
  /* 0: nothing to restore; 1: scatter rank 0's rows; 2: another world size; 3: another kind */
  int restore = 0;
  if (tr->w.rank == 0 && was->residuals) {
    const bool same_kind = tr->compressing && was->compression &&
                           strcmp(was->compression, mn_compress_names[kind]) == 0;
    restore = !same_kind ? 3 : was->residual_rows != tr->w.size ? 2 : 1;
    if (restore > 1)
      fprintf(stderr,
              "mpinet: warning: the checkpoint holds the gradient residuals of %lld ranks "
              "compressing with %s; this run has %d ranks and grad_compression = %s: %s\n",
              was->residual_rows, was->compression ? was->compression : "?", tr->w.size,
              mn_compress_names[kind],
              tr->compressing ? "its residuals restart from zero (training continues, not with "
                                "the bits an uninterrupted run would have)"
                              : "they are dropped");
  }
  MPI_Bcast(&restore, 1, MPI_INT, 0, tr->w.comm);
  if (restore == 1)
    MPI_Scatter(was->residuals, (int)tr->comp.n, MPI_FLOAT, tr->comp.residual, (int)tr->comp.n,
                MPI_FLOAT, 0, tr->w.comm);
  mn_ckpt_meta_free(&tr->resumed);
  return 0;
}

int mn_trainer_setup_sync(trainer *tr, long long first_step) {
  if (choose(tr, first_step) != 0) return -1;
  if (setup_compression(tr) != 0) return -1;
  /* the layout every rank must share, carried in each step's record (step_record.h) */
  const mn_grad_sync *sync = &tr->sync;
  uint64_t h = mn_fnv1a64(MN_FNV_SEED, sync->bounds, (size_t)(sync->nbuckets + 1) * sizeof(size_t));
  h = mn_fnv1a64(h, &tr->net.tail, sizeof tr->net.tail);
  h = mn_fnv1a64(h, &sync->overlap, sizeof sync->overlap);
  const bool node = sync->node != NULL;
  h = mn_fnv1a64(h, &node, sizeof node);
  h = mn_fnv1a64(h, &tr->repro.shards, sizeof tr->repro.shards);
  h = mn_fnv1a64(h, &tr->compressing, sizeof tr->compressing);
  tr->layout_hash = (uint32_t)(h ^ (h >> 24) ^ (h >> 48)) & 0xFFFFFFu;
  return 0;
}
