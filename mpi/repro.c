/* repro.c: reproducible mode (repro.h): micro-batches, their fixed summation tree, and the
 * trainer's use of them. */
#include "repro.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "hash.h"
#include "step_record.h"
#include "trainer.h"

enum { TREE_TAG = 7077 };

size_t mn_repro_tail(int shards, size_t nstate) { return nstate + 2 * (size_t)shards; }

int mn_repro_init(mn_repro *r, mn_net *net, size_t records, int shards, int world_size,
                  int global_batch, mn_err *err) {
  memset(r, 0, sizeof *r);
  if ((world_size & (world_size - 1)) != 0 || shards % world_size != 0)
    return mn_fail(err,
                   "with virtual_shards = %d the job must run on a power-of-two number of "
                   "ranks that divides %d (1, 2, 4, ...), not on %d (reproducible mode gives "
                   "every rank the same number of equal micro-batches; the uneven split of "
                   "the normal mode would change its sums)",
                   shards, shards, world_size);
  if (global_batch % shards != 0)
    return mn_fail(err,
                   "batch %d is not divisible by virtual_shards = %d (each micro-batch holds "
                   "batch / virtual_shards rows)",
                   global_batch, shards);
  r->shards = shards;
  r->per_rank = shards / world_size;
  r->micro = global_batch / shards;
  r->n = net->nparams + net->tail;
  r->delta_at = net->nparams + records;
  r->stats_at = r->delta_at + net->nstate;
  if (r->n / 2 + 1 > INT_MAX)
    return mn_fail(err, "%zu gradient floats are more than one MPI message holds", r->n);
  r->own = net->grads;
  int need = 0; /* buffers besides the network's own: the depth of the local tree */
  while ((1 << need) < r->per_rank) need++;
  if (need >= MN_REPRO_BUFFERS)
    return mn_fail(err, "%d micro-batches per rank are too many", r->per_rank);
  for (int i = 0; i < need; i++) {
    float *b = mn_alloc(r->n, sizeof(float), "micro-batch gradients", err);
    if (!b) return -1;
    r->mine[r->nmine++] = b;
    r->spare[r->nspare++] = b;
  }
  r->state0 = mn_alloc(net->nstate + 1, sizeof(float), "batch-norm statistics", err);
  r->scratch = mn_alloc(r->n / 2 + 1, sizeof(float), "tree allreduce buffer", err);
  return r->state0 && r->scratch ? 0 : -1;
}

void mn_repro_free(mn_repro *r, mn_net *net) {
  if (r->own) mn_net_bind_grads(net, r->own);
  for (int i = 0; i < r->nmine; i++) free(r->mine[i]);
  free(r->skip);
  free(r->state0);
  free(r->scratch);
  memset(r, 0, sizeof *r);
}

void mn_tree_allreduce(const mn_world *w, float *buf, size_t n, float *scratch) {
  const int size = w->size, rank = w->rank;
  size_t lo = 0, hi = n, seg_lo[32], seg_hi[32];
  int levels = 0;
  /* recursive halving: at distance d, partners share their segment; the one with bit d
   * clear keeps the lower half, receives the partner's copy of it and adds */
  for (int d = 1; d < size; d <<= 1, levels++) {
    const int partner = rank ^ d;
    const size_t mid = lo + (hi - lo) / 2;
    const bool lower = (rank & d) == 0;
    const size_t keep_lo = lower ? lo : mid, keep_hi = lower ? mid : hi;
    const size_t send_lo = lower ? mid : lo, send_hi = lower ? hi : mid;
    seg_lo[levels] = lo, seg_hi[levels] = hi;
    MPI_Sendrecv(buf + send_lo, (int)(send_hi - send_lo), MPI_FLOAT, partner, TREE_TAG, scratch,
                 (int)(keep_hi - keep_lo), MPI_FLOAT, partner, TREE_TAG, w->comm,
                 MPI_STATUS_IGNORE);
    float *restrict keep = buf + keep_lo;
    for (size_t i = 0; i < keep_hi - keep_lo; i++) keep[i] += scratch[i];
    lo = keep_lo, hi = keep_hi;
  }
  /* recursive doubling: hand the finished segment to the partner, level by level back up */
  for (int l = levels - 1; l >= 0; l--) {
    const int d = 1 << l, partner = rank ^ d;
    const size_t mid = seg_lo[l] + (seg_hi[l] - seg_lo[l]) / 2;
    const bool lower = (rank & d) == 0;
    const size_t other_lo = lower ? mid : seg_lo[l], other_hi = lower ? seg_hi[l] : mid;
    MPI_Sendrecv(buf + lo, (int)(hi - lo), MPI_FLOAT, partner, TREE_TAG, buf + other_lo,
                 (int)(other_hi - other_lo), MPI_FLOAT, partner, TREE_TAG, w->comm,
                 MPI_STATUS_IGNORE);
    lo = seg_lo[l], hi = seg_hi[l];
  }
}

/* One micro-batch's carries of the binary counter (below), fused: link[0] is the micro-batch
 * just computed, link[1..t] the partial sums on the stack, newest first. Per element,
 * v = link[0]; v = link[1] + v; ...; v = link[t-1] + v; link[t] = link[t] + v, and links
 * 0..t-1 are zeroed for reuse: the same additions, in the same order, as t passes of
 * "left += right", in one pass. Deferred ranges (mn_repro.skip) are left out: their sums
 * arrive whole at the last micro-batch. */
typedef struct {
  float *link[MN_REPRO_BUFFERS + 1];
  int t;
  size_t done;        /* [0, done) merged */
  size_t scan_end;    /* the rank's last carry scans the sum's [0, scan_end) for NaN/inf */
  size_t first_bad;   /* and finds its first non-finite value here (SIZE_MAX: none) */
  const size_t *skip; /* mn_repro.skip */
  int nskip;
} carry;

/* The chain for elements [lo0, hi). */
static void carry_links(carry *c, size_t lo0, size_t hi) {
  enum { BLOCK = 512 }; /* v stays in L1; every loop below vectorises */
  for (size_t lo = lo0; lo < hi; lo += BLOCK) {
    const size_t n = hi - lo < BLOCK ? hi - lo : BLOCK;
    float *restrict last = c->link[c->t] + lo;
    float v[BLOCK];
    float *restrict first = c->link[0] + lo;
    for (size_t i = 0; i < n; i++) v[i] = first[i], first[i] = 0.0f;
    for (int l = 1; l < c->t; l++) {
      float *restrict mid = c->link[l] + lo;
      for (size_t i = 0; i < n; i++) v[i] = mid[i] + v[i], mid[i] = 0.0f;
    }
    for (size_t i = 0; i < n; i++) last[i] = last[i] + v[i];
    if (lo < c->scan_end && c->first_bad == SIZE_MAX) { /* while the block is in L1 */
      const size_t end = c->scan_end - lo < n ? c->scan_end - lo : n;
      const size_t bad = mn_first_nonfinite(last, end);
      if (bad < end) c->first_bad = lo + bad;
    }
  }
}

/* Merges [done, hi), less the deferred ranges. */
static void carry_range(carry *c, size_t hi) {
  for (int s = 0; s < c->nskip && c->done < hi; s++) {
    const size_t lo = c->skip[2 * s], end = c->skip[2 * s + 1];
    if (end <= c->done) continue;
    if (lo >= hi) break;
    if (lo > c->done) carry_links(c, c->done, lo);
    c->done = end < hi ? end : hi;
  }
  if (c->done < hi) carry_links(c, c->done, hi);
  if (c->done < hi) c->done = hi;
}

/* mn_listeners.grads_ready during a micro-batch's backward: its gradients [0, upto) are final, so
 * they are merged while the layer that wrote them is still in cache. */
static void carry_ready(void *user, size_t upto, size_t checked_from) {
  (void)checked_from; /* the carries scan their sums (carry.scan_end) */
  carry_range(user, upto);
}

void mn_trainer_repro_local(trainer *tr, const mn_batch *b, mn_pass *pass, mn_loss_stats *local,
                            double *forward_s) {
  mn_repro *r = &tr->repro;
  mn_net *net = &tr->net;
  const int m = r->micro;
  const size_t row = tr->train.row_len;
  const float inv_shards = 1.0f / (float)r->shards;
  const size_t state_bytes = net->nstate * sizeof(float);
  float *stack[MN_REPRO_BUFFERS];
  int depth = 0;
  size_t first_bad = SIZE_MAX;
  memcpy(r->state0, net->state, state_bytes);
  mn_net_fixed_refresh(net); /* the optimizer has moved the weights since the last step */
  pass->fixed.on = true;
  pass->fixed.parts = r->defer ? r->per_rank : 0;
  memset(local, 0, sizeof *local);
  *forward_s = 0.0;
  tr->bad_layer = -1;
  for (int i = 0; i < r->per_rank; i++) {
    /* the first micro-batch takes the buffer the optimizer just zeroed */
    float *cur = i == 0 ? net->grads : r->spare[--r->nspare];
    mn_net_bind_grads(net, cur);
    if (i > 0) memcpy(net->state, r->state0, state_bytes);
    const size_t first = (size_t)i * (size_t)m;
    const double t0 = MPI_Wtime();
    mn_loss_stats st;
    mn_trainer_forward_loss(tr, pass, b, first, m, &st);
    *forward_s += MPI_Wtime() - t0;
    if (!isfinite(st.loss_sum) && tr->bad_layer < 0)
      tr->bad_layer = mn_net_first_nonfinite_output(net, m);
    /* the binary counter of micro-batches done: micro-batch i + 1 carries once per trailing
     * zero bit of i + 1, each carry adding two subtrees of equal size */
    const bool final = i == r->per_rank - 1;
    carry c = {.link = {cur},
               .scan_end = final && tr->s.check_gradients ? net->nparams : 0,
               .first_bad = SIZE_MAX,
               .skip = r->skip,
               .nskip = r->nskip};
    for (unsigned bits = (unsigned)i + 1; (bits & 1u) == 0; bits >>= 1) {
      c.t++;
      c.link[c.t] = stack[depth - c.t];
    }
    /* the last micro-batch's carries end in the rank's sum: deferred gradients go there */
    float *sum = c.link[c.t];
    pass->fixed.part = i;
    pass->fixed.deferred_grads = sum;
    pass->listen.grads_ready = c.t > 0 ? carry_ready : NULL;
    pass->listen.grads_user = &c;
    mn_net_backward(net, pass, b->x + first * row, m, NULL);
    if (i == 0 && tr->fault_nan && pass->step == tr->fault_step) /* test hook (train.c): */
      net->layers[0].grads[net->layers[0].nparams - 1] = NAN;    /* a value no layer defers */
    for (size_t j = 0; j < net->nstate; j++)
      cur[r->delta_at + j] = (net->state[j] - r->state0[j]) * inv_shards;
    const size_t g = (size_t)tr->w.rank * (size_t)r->per_rank + (size_t)i;
    cur[r->stats_at + 2 * g] = (float)st.loss_sum + 0.0f; /* + 0: never a -0 */
    cur[r->stats_at + 2 * g + 1] = (float)st.correct;
    local->loss_sum += st.loss_sum;
    local->correct += st.correct;
    if (c.t > 0) {
      carry_range(&c, r->n); /* what backward did not report, and the tail */
      first_bad = c.first_bad;
      for (int s = 0; s < r->nskip && c.scan_end > 0; s++) { /* the deferred sums */
        const size_t lo = r->skip[2 * s],
                     bad = mn_first_nonfinite(sum + lo, r->skip[2 * s + 1] - lo);
        if (bad < r->skip[2 * s + 1] - lo && lo + bad < first_bad) first_bad = lo + bad;
      }
      for (int l = 0; l < c.t; l++) r->spare[r->nspare++] = c.link[l];
      depth -= c.t - 1;
      stack[depth - 1] = c.link[c.t];
    } else {
      stack[depth++] = cur;
      if (final && tr->s.check_gradients) { /* one micro-batch per rank: nothing carried */
        const size_t bad = mn_first_nonfinite(cur, net->nparams);
        first_bad = bad < net->nparams ? bad : SIZE_MAX;
      }
    }
  }
  pass->listen.grads_ready = NULL;
  pass->fixed = (mn_fixed_pass){0};
  mn_net_bind_grads(net, stack[0]);
  memcpy(net->state, r->state0, state_bytes);
  tr->sync.first_bad = first_bad;
}

void mn_trainer_repro_allreduce(trainer *tr) {
  if (tr->w.size > 1) mn_tree_allreduce(&tr->w, tr->net.grads, tr->repro.n, tr->repro.scratch);
}

void mn_trainer_repro_apply(trainer *tr, bool update_state, mn_loss_stats *global) {
  const mn_repro *r = &tr->repro;
  mn_net *net = &tr->net;
  float *t = net->grads;
  memset(global, 0, sizeof *global);
  for (int g = 0; g < r->shards; g++) {
    global->loss_sum += t[r->stats_at + 2 * (size_t)g];
    global->correct += (long)t[r->stats_at + 2 * (size_t)g + 1];
  }
  if (update_state)
    for (size_t j = 0; j < net->nstate; j++) net->state[j] += t[r->delta_at + j];
  /* the optimizer zeroes the gradients; the tail is zeroed here */
  memset(t + net->nparams, 0, (r->n - net->nparams) * sizeof(float));
}

/* The GEMM kernels must be the same on every rank: OpenBLAS picks them by CPU at run time, and
 * a node with another CPU would compute another micro-batch gradient. */
static int same_kernels(const trainer *tr, mn_err *err) {
  const char *core = openblas_get_corename();
  /* every rank fails together; the lowest, rank 0, says so */
  const int other = mn_world_first_differing(&tr->w, mn_fnv1a64(MN_FNV_SEED, core, strlen(core)));
  if (other >= 0)
    return mn_fail(err,
                   "this rank's OpenBLAS uses the '%s' kernels but rank %d's differ: identical "
                   "bits need the same GEMM kernels on every rank (set OPENBLAS_CORETYPE to one "
                   "core type on every node)",
                   core, other);
  return 0;
}

int mn_trainer_repro_setup(trainer *tr, mn_err *err) {
  const mn_settings *s = &tr->s;
  char where[700]; /* "job.ini:12: [train] reproducible" or "--set train.reproducible" */
  mn_cfg_section *train = mn_config_section(&tr->cfg, "train");
  mn_cfg_where(train, mn_cfg_find(train, "reproducible"), where, sizeof where);
  if (s->shuffle != MN_SHUFFLE_GLOBAL)
    return mn_fail(err,
                   "%s: needs [data] shuffle = global (in shard mode each rank's data order "
                   "depends on the number of ranks)",
                   where);
  if (s->threads > 1)
    return mn_fail(err,
                   "%s: not with threads = %ld: the mode runs one BLAS thread per rank (a "
                   "threaded GEMM may split its sums by thread count)",
                   where, s->threads);
  for (int i = 0; i < tr->cfg.count; i++) {
    mn_cfg_section *sec = &tr->cfg.sections[i];
    mn_cfg_entry *type = mn_cfg_find(sec, "type");
    bool sync = false;
    if (strcmp(sec->name, "layer") != 0 || !type || strcmp(type->value, "batchnorm") != 0) continue;
    if (mn_cfg_bool(sec, "sync", false, &sync, err) != 0) return -1;
    if (sync) {
      char at[700];
      mn_cfg_where(sec, mn_cfg_find(sec, "sync"), at, sizeof at);
      return mn_fail(err,
                     "%s: not with [train] reproducible = true: batch norm then normalises each "
                     "micro-batch of batch / virtual_shards rows on its own (set sync = false)",
                     at);
    }
  }
  if (same_kernels(tr, err) != 0) return mn_fail_prefix(err, "%s", where);
  if (mn_repro_init(&tr->repro, &tr->net, mn_record_tail(tr->w.size), (int)s->virtual_shards,
                    tr->w.size, (int)s->batch, err) != 0)
    return mn_fail_prefix(err, "%s", where);
  /* the test hook takes the plain way, each micro-batch's weight gradients carried like the
   * rest, to compare */
  mn_repro *r = &tr->repro;
  mn_net *net = &tr->net;
  r->defer = !getenv("MPINET_REPRO_PLAIN");
  if (mn_net_fixed_setup(net, r->micro, r->defer ? r->per_rank : 0, err) != 0) return -1;
  r->skip = mn_alloc(2 * (size_t)net->nlayers, sizeof(size_t), "deferred ranges", err);
  if (!r->skip) return -1;
  for (int li = net->nlayers - 1; li >= 0; li--) { /* the last layer's slice comes first */
    const mn_layer *l = &net->layers[li];
    if (l->fixed_deferred == 0) continue;
    r->skip[2 * r->nskip] = l->param_offset;
    r->skip[2 * r->nskip++ + 1] = l->param_offset + l->fixed_deferred;
  }
  return 0;
}
