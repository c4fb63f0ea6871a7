/* train.c: `mpinet train`: the synchronous data-parallel training loop.
 *
 * Every rank: same config, same initial parameters (broadcast from rank 0), its own slice
 * of each global batch, local forward/backward, ONE allreduce of the gradient buffer, the
 * same SGD update. Rank 0 reports, writes metrics.jsonl and checkpoints. Every failure goes
 * through world.h's policy: agreed by all ranks, or an abort of the whole job. */
#define _GNU_SOURCE
#include "train.h"

#include <getopt.h>
#include <inttypes.h>
#include <malloc.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cblas.h>

#include "checkpoint.h"
#include "evaluate.h"
#include "fileutil.h"
#include "grad_sync.h"
#include "h5util.h"
#include "hash.h"
#include "job.h"
#include "loader.h"
#include "run_dir.h"
#include "sha256.h"
#include "step_record.h"
#include "trainer.h"
#include "watchdog.h"
#include "world.h"

static void usage(FILE *out) {
  fprintf(out,
          "usage: mpirun -np N mpinet train CONFIG.ini [--set section.key=value ...]\n"
          "                                 [--resume RUN_DIR]\n"
          "       mpinet train --resume RUN_DIR          (reuses RUN_DIR/config.ini)\n"
          "\n"
          "Trains the network of CONFIG.ini with synchronous data parallelism over the N MPI\n"
          "ranks: each rank computes gradients on its share of every global batch\n"
          "([train] batch), gradients are averaged (in each node's shared memory, then across\n"
          "nodes with MPI; [train] allreduce = mpi for MPI buckets alone), and every rank\n"
          "applies the same SGD update. Rank 0 prints progress and writes checkpoint.dir:\n"
          "  config.ini      the effective config (overrides applied)\n"
          "  metrics.jsonl   one JSON object per evaluation (epoch, step, train_loss,\n"
          "                  test_loss, test_accuracy, samples_per_s, wall_s, ...)\n"
          "  ckpt-<step>.h5  checkpoints (HDF5), `latest` names the newest good one\n"
          "\n"
          "  --set section.key=value  override any config key (repeatable);\n"
          "                           layerN.key=value for the N-th [layer]\n"
          "  --resume RUN_DIR         continue from RUN_DIR's latest checkpoint, at the exact\n"
          "                           step, writing further checkpoints there\n"
          "  --set train.reproducible=true  the same bits at 1, 2, 4 ... train.virtual_shards\n"
          "                           ranks (8 by default), also across a --resume at another\n"
          "                           world size; compare the 'parameters sha256' line\n"
          "  SIGUSR1 or SIGTERM to any rank (SIGUSR1 to mpirun, which forwards it): every rank\n"
          "  stops after the same step, a checkpoint is written, exit status 75: requeue and\n"
          "  --resume. A rank without progress for train.watchdog_seconds ends the job.\n"
          "Exit status: 0 done, 1 error (one line 'mpinet: error: ...'), 2 bad usage,\n"
          "3 watchdog (no progress), 75 stopped by a signal after a checkpoint.\n");
}

/* Loads `path` (what `latest` names); if it is unreadable or corrupt, the newest older
 * checkpoint of the run directory that loads, with a warning naming both files. On success
 * path holds the file that was loaded. */
static int load_with_fallback(trainer *tr, const char *dir, char *path, size_t len, mn_ckpt_meta *m,
                              mn_err *err) {
  if (mn_checkpoint_load(path, &tr->net, &tr->s.opt, m, err) == 0) return 0;
  mn_err first = *err;
  static long long steps[4096];
  char latest[1100];
  snprintf(latest, sizeof latest, "%s", path);
  for (int i = mn_run_dir_list(dir, steps, 4096) - 1; i >= 0; i--) {
    mn_run_dir_checkpoint_path(dir, steps[i], path, len);
    if (strcmp(path, latest) == 0) continue;
    if (mn_checkpoint_load(path, &tr->net, &tr->s.opt, m, err) == 0) {
      fprintf(stderr, "mpinet: warning: %s; resuming from the previous checkpoint %s instead\n",
              first.msg, path);
      return 0;
    }
  }
  *err = first;
  return -1;
}

/* Reproducible mode's bits depend on virtual_shards: a resume that changes it (or turns the
 * mode on or off) continues correctly, but not with the bits an uninterrupted run would
 * have; say so, naming the checkpoint. */
static void warn_other_summation(const trainer *tr, const char *path, const char *config_text) {
  mn_config cfg;
  mn_err err;
  if (!config_text || mn_config_parse(&cfg, path, config_text, &err) != 0) return;
  mn_cfg_section *train = mn_config_section(&cfg, "train");
  bool was = false;
  long shards = 8;
  if (mn_cfg_bool(train, "reproducible", false, &was, &err) == 0 &&
      mn_cfg_int(train, "virtual_shards", 8, 1, 4096, &shards, &err) == 0 &&
      (was || tr->s.reproducible) &&
      (was != tr->s.reproducible || (was && shards != tr->s.virtual_shards)))
    fprintf(stderr,
            "mpinet: warning: %s was written with reproducible = %s, virtual_shards = %ld; this "
            "run has %s, %ld: it continues, but its bits will not match a run that never "
            "changed them\n",
            path, was ? "true" : "false", shards, tr->s.reproducible ? "true" : "false",
            tr->s.virtual_shards);
  mn_config_free(&cfg);
}

/* Loads or initialises parameters; returns the step to start from. */
static int start_state(trainer *tr, const char *resume_dir, long long *step) {
  mn_err err;
  int rc = 0;
  long long meta[4] = {0, 0, 0, 0};
  if (tr->w.rank == 0) {
    if (resume_dir) {
      char path[1100];
      mn_ckpt_meta m;
      rc = mn_run_dir_latest(resume_dir, path, sizeof path, &err);
      if (rc == 0) rc = load_with_fallback(tr, resume_dir, path, sizeof path, &m, &err);
      if (rc == 0) {
        meta[0] = m.step;
        meta[1] = m.world_size;
        meta[2] = m.bucket_floats;
        meta[3] = m.grad_overlap;
        if (m.seed != tr->s.seed)
          fprintf(stderr,
                  "mpinet: warning: %s was written with seed %lld but the config says %ld: "
                  "data order and dropout masks follow the config from here on\n",
                  path, m.seed, tr->s.seed);
        warn_other_summation(tr, path, m.config_text);
        printf("resuming from %s at step %lld (written by %lld ranks)\n", path, m.step,
               m.world_size);
        mn_ckpt_meta_free(&m);
      }
    } else {
      mn_net_init_params(&tr->net, (uint64_t)tr->s.seed);
    }
  }
  if (mn_world_agree(&tr->w, rc, &err) != 0) return -1;
  MPI_Bcast(meta, 4, MPI_LONG_LONG, 0, tr->w.comm);
  /* the same buckets as before the interruption keep the reduction order, hence the bits */
  tr->resumed_bucket = meta[1] == tr->w.size ? meta[2] : 0;
  tr->resumed_overlap = meta[3] != 0;
  mn_bcast_floats(&tr->w, tr->net.params, tr->net.nparams);
  mn_bcast_floats(&tr->w, tr->net.state, tr->net.nstate);
  for (int b = 0; b < tr->s.opt.nbuf; b++)
    mn_bcast_floats(&tr->w, tr->s.opt.buf[b], tr->net.nparams);
  *step = meta[0];
  return 0;
}

static int save_checkpoint(trainer *tr, long long step, long long epoch) {
  mn_err err;
  int rc = 0;
  mn_watchdog_phase(MN_PHASE_CHECKPOINT, step - 1);
  if (tr->w.rank == 0) {
    char path[1100];
    mn_run_dir_checkpoint_path(tr->s.run_dir, step, path, sizeof path);
    mn_ckpt_meta meta = {.step = step,
                         .epoch = epoch,
                         .seed = tr->s.seed,
                         .world_size = tr->w.size,
                         .config_text = tr->config_text,
                         .data_path = (char *)tr->s.data_path,
                         .bucket_floats = tr->sync.node ? 0 : (long long)tr->sync.bucket_floats,
                         .grad_overlap = tr->sync.overlap};
    /* the checkpoint's image takes their place; between steps the gradients are dead (the
     * next backward replaces them; reproducible mode's buffers are its own: left alone) */
    mn_net_release_buffers(&tr->net, !tr->s.reproducible, true);
    rc = mn_checkpoint_save(path, &tr->net, &tr->s.opt, &meta, &err);
    if (rc == 0) rc = mn_run_dir_commit(tr->s.run_dir, step, (int)tr->s.keep, &err);
    if (rc != 0)
      mn_fail_prefix(&err, "checkpoint at step %lld (earlier checkpoints are intact)", step);
  }
  return mn_world_agree(&tr->w, rc, &err);
}

/* train.check_allocations: the steady state must not allocate. The allocator's in-use bytes
 * are recorded after a few warm-up steps (MPI and OpenBLAS set up their pools lazily) and
 * must not change on any later step of the epoch; evaluation and checkpoints, between
 * epochs, may allocate and are measured around. */
static int check_heap(trainer *tr, long long step) {
  const long spe = tr->sampler.steps_per_epoch;
  const long in_epoch = (long)(step % spe);
  const size_t now = mallinfo2().uordblks;
  if (in_epoch == (spe > 8 ? 4 : 0)) {
    tr->heap_in_use = now;
  } else if (in_epoch > (spe > 8 ? 4 : 0) && now != tr->heap_in_use) {
    fprintf(stderr,
            "mpinet: error: rank %d: the heap moved by %lld bytes at step %lld (an "
            "allocation in the training step)\n",
            tr->w.rank, (long long)now - (long long)tr->heap_in_use, step + 1);
    MPI_Abort(tr->w.comm, 1);
  }
  if (in_epoch == spe - 1 && tr->w.rank == 0 && spe > 1)
    printf("check_allocations: heap in use constant at %zu bytes over steps %ld-%ld of the "
           "epoch\n",
           now, (spe > 8 ? 5L : 1L), spe);
  return 0;
}

/* The sampler, as the loader's source of row indices (called on the prefetch thread). */
static void rows_for_step(void *user, long long step, uint32_t *rows) {
  mn_sampler *sm = user;
  mn_sampler_batch(sm, (long)(step / sm->steps_per_epoch), (long)(step % sm->steps_per_epoch),
                   rows);
}

/* This rank's record for the step (step_record.h): faults found here, a stop request, and
 * the fingerprint every rank must share. A rank with a non-finite loss names the first layer
 * whose output went non-finite (tr->bad_layer: looked for between forward and backward, in
 * reproducible mode in its first non-finite micro-batch, and only then: a diagnosis, not a
 * per-step cost). */
static void write_record(trainer *tr, const mn_loss_stats *st, long long step, long long stop) {
  mn_net *net = &tr->net;
  uint32_t rec[MN_REC_FIELDS] = {0};
  if (!isfinite(st->loss_sum))
    rec[MN_REC_LOSS] = (uint32_t)(1 + (tr->bad_layer >= 0 ? tr->bad_layer : net->nlayers));
  if (tr->sync.first_bad != SIZE_MAX) {
    int layer = mn_net_layer_at(net, tr->sync.first_bad);
    rec[MN_REC_GRAD] = (uint32_t)(1 + (layer >= 0 ? layer : net->nlayers));
  }
  rec[MN_REC_STOP] = mn_stop_signal() ? 1 : 0;
  rec[MN_REC_STEP] = (uint32_t)step;
  rec[MN_REC_LAYOUT] = tr->layout_hash;
  rec[MN_REC_LEFT] = (uint32_t)(stop - step);
  mn_record_write(net->grads + net->nparams, tr->w.size, tr->w.rank, rec);
}

/* "loss at step 7 (epoch 1) on rank 1 (first non-finite output: layer 02_dense)" */
static void describe_fault(const trainer *tr, const mn_record_verdict *v, long long step,
                           char *buf, size_t len) {
  const mn_net *net = &tr->net;
  const bool loss = v->loss_ranks > 0;
  const int rank = loss ? v->loss_rank : v->grad_rank;
  const int layer = loss ? v->loss_layer : v->grad_layer;
  const int ranks = loss ? v->loss_ranks : v->grad_ranks;
  const char *name = layer >= 0 && layer < net->nlayers ? net->layers[layer].name : NULL;
  char others[64] = "";
  if (ranks > 1) snprintf(others, sizeof others, " and %d other rank(s)", ranks - 1);
  snprintf(buf, len, "non-finite %s at step %lld (epoch %lld) on rank %d%s (%s%s)",
           loss ? "loss" : "gradient", step + 1, step / tr->sampler.steps_per_epoch + 1, rank,
           others,
           !name ? "every layer's output finite: the loss itself overflowed"
           : loss ? "first non-finite output: layer "
                  : "first one in the parameters of layer ",
           name ? name : "");
}

/* A traced step's events: phases on the compute track, buckets on the communication one. */
static void trace_step(trainer *tr, long long step, double ta, double tb, double tc, double td,
                       double te, double tf) {
  mn_timeline *t = &tr->tl;
  mn_timeline_add(t, MN_TL_DATA, 0, step, ta, tb);
  mn_timeline_add(t, MN_TL_FORWARD, 0, step, tb, tc);
  mn_timeline_add(t, MN_TL_BACKWARD, 0, step, tc, td);
  mn_timeline_add(t, MN_TL_COMM_WAIT, 0, step, td, te);
  mn_timeline_add(t, MN_TL_OPTIMIZER, 0, step, te, tf);
  for (int b = 0; b < tr->sync.timed; b++)
    mn_timeline_add(t, MN_TL_BUCKET, b, step, tr->sync.posted_at[b], tr->sync.done_at[b]);
}

const float *mn_trainer_forward_loss(trainer *tr, mn_pass *p, const mn_batch *b, size_t first,
                                     int rows, mn_loss_stats *st) {
  mn_net *net = &tr->net;
  const bool labels = tr->train.info.has_labels;
  p->sample_ids = b->ids + first;
  const float *out = mn_net_forward(net, p, b->x + first * tr->train.row_len, rows);
  *st = (mn_loss_stats){0};
  mn_loss_compute(net->loss, mn_net_final_act(net), out, labels ? b->y + first : NULL,
                  labels ? NULL : b->t + first * (size_t)tr->train.info.classes, rows,
                  net->outputs, 1.0f / (float)tr->s.batch, mn_net_output_grad(net), st);
  return out;
}

/* The loop proper; returns 0 when done, 1 when stopped by a signal (after a checkpoint), or
 * -1 on errors (already reported). */
static int train_loop(trainer *tr, long long step) {
  const mn_settings *s = &tr->s;
  const long spe = tr->sampler.steps_per_epoch;
  const long long total = s->epochs * spe;
  const long long stop = s->max_steps > 0 && s->max_steps < total ? s->max_steps : total;
  const int lb = tr->sampler.local_batch;
  const bool tty = tr->w.rank == 0 && tr->bar;
  mn_net *net = &tr->net;
  const bool repro = s->reproducible;
  /* backward replaces the gradients (reproducible mode adds up its micro-batches') */
  mn_pass pass = {.training = true, .seed = (uint64_t)s->seed, .fresh_grads = !repro};
  if (tr->w.size > 1 && !repro) {
    pass.allreduce_sum = mn_allreduce_doubles;
    pass.allreduce_user = &tr->w;
    pass.grads_ready = mn_grad_sync_ready;
    pass.grads_user = &tr->sync;
  }
  mn_loader_start(&tr->loader, step);
  mn_net_zero_grads(net); /* reproducible mode: from here on the optimizer zeroes them */
  bool stopping = false;

  while (step < stop) {
    const long long epoch = step / spe;
    train_sums ts = {0};
    double t0 = MPI_Wtime(), last_print = t0;
    long long samples = 0;
    long s_in = (long)(step % spe);
    for (; s_in < spe && step < stop; s_in++, step++) {
      double ta = MPI_Wtime();
      mn_watchdog_phase(MN_PHASE_DATA, step);
      const mn_batch *b = mn_loader_next(&tr->loader, step);
      if (!b) mn_world_abort(&tr->w, "%s", tr->stream.error); /* the stream could not read */
      if (step == tr->fault_step && !tr->fault_nan) { /* test hook, see setup() */
        tr->fault_step = -1;
        continue;
      }
      double tb = MPI_Wtime();
      mn_watchdog_phase(MN_PHASE_FORWARD, step);
      const bool traced = mn_timeline_on(&tr->tl, step);
      tr->sync.timing = traced;
      /* per-layer events only in the normal mode: not once per micro-batch */
      pass.layer_done = traced && !repro ? mn_timeline_layer : NULL;
      pass.layer_user = &tr->tl;
      tr->tl.step = step, tr->tl.layer_t = tb;
      pass.step = step;
      mn_loss_stats st = {0};
      double tc;
      if (repro) {
        /* micro-batches, each forward then backward: the forward phase is the sum of their
         * forward passes, the backward phase the rest (backward passes, tree additions); the
         * nan-grad test hook strikes inside, in the first micro-batch's gradient */
        double forward_s;
        mn_trainer_repro_local(tr, b, &pass, &st, &forward_s);
        tc = tb + forward_s;
        mn_watchdog_phase(MN_PHASE_BACKWARD, step);
      } else {
        mn_trainer_forward_loss(tr, &pass, b, 0, lb, &st);
        /* before backward, which may write gradients over layer outputs */
        tr->bad_layer = isfinite(st.loss_sum) ? -1 : mn_net_first_nonfinite_output(net, lb);
        tc = MPI_Wtime();
        mn_watchdog_phase(MN_PHASE_BACKWARD, step);
        tr->tl.layer_t = tc;
        mn_grad_sync_begin(&tr->sync);
        /* test hook: a NaN in the input the first layer's weight gradient is made of (the
         * loss, computed before, stays finite; backward replaces what the buffer held) */
        if (step == tr->fault_step && tr->fault_nan) b->x[0] = NAN;
        mn_net_backward(net, &pass, b->x, lb, NULL);
        mn_grad_sync_scan_rest(&tr->sync);
      }
      write_record(tr, &st, step, stop);
      double td = MPI_Wtime();
      mn_watchdog_phase(MN_PHASE_ALLREDUCE, step);
      if (repro)
        mn_trainer_repro_allreduce(tr);
      else
        mn_grad_sync_finish(&tr->sync);
      double te = MPI_Wtime();
      mn_watchdog_phase(MN_PHASE_OPTIMIZER, step);
      /* every rank read the same records, so all take the same decisions at this step */
      mn_record_verdict v;
      const float *sum = mn_grad_sync_sum(&tr->sync);
      mn_record_read(sum + net->nparams, tr->w.size, &v);
      if (repro) /* the global batch's loss, identical on every rank */
        mn_trainer_repro_apply(tr, v.loss_ranks + v.grad_ranks == 0, &st);
      if (v.desync_ranks > 0) {
        if (tr->w.rank == 0)
          fprintf(stderr,
                  "mpinet: error: ranks out of step at the gradient allreduce of step %lld: "
                  "%d rank(s) disagree with rank 0 (%s); stopping before they deadlock in a "
                  "later collective; the last checkpoint in %s is intact\n",
                  step + 1, v.desync_ranks, v.desync, s->run_dir);
        return -1;
      }
      stopping = v.stop;
      bool skipped = false;
      if (v.loss_ranks + v.grad_ranks > 0) {
        char what[400];
        describe_fault(tr, &v, step, what, sizeof what);
        if (!s->skip_nonfinite) {
          if (tr->w.rank == 0)
            fprintf(stderr,
                    "mpinet: error: %s; stopping (lower train.lr?); the last checkpoint in %s "
                    "is intact\n",
                    what, s->run_dir);
          return -1;
        }
        /* train.on_nonfinite = skip: every rank drops this step's update together */
        if (tr->w.rank == 0)
          fprintf(stderr, "mpinet: warning: %s: step skipped on every rank\n", what);
        tr->skipped_steps++;
        mn_net_zero_grads(net);
        skipped = true;
      }
      if (!skipped) mn_optim_step(&tr->s.opt, net->params, sum, repro ? net->grads : NULL, step);
      double tf = MPI_Wtime();
      if (traced) trace_step(tr, step, ta, tb, tc, td, te, tf);
      if (tr->first_step_unix == 0.0) tr->first_step_unix = mn_unix_now();
      if (s->check_allocations && check_heap(tr, step) != 0) return -1;
      ts.time[PHASE_DATA] += tb - ta;
      ts.time[PHASE_FORWARD] += tc - tb;
      ts.time[PHASE_BACKWARD] += td - tc;
      ts.time[PHASE_COMM] += te - td;
      ts.time[PHASE_OPTIMIZER] += tf - te;
      if (!skipped) {
        ts.loss_sum += st.loss_sum;
        ts.correct += (double)st.correct;
        ts.count += repro ? s->batch : lb;
      }
      samples += s->batch;
      if (tr->w.rank == 0) {
        double now = MPI_Wtime();
        if ((tty && now - last_print > 0.25) || (!tty && now - last_print > s->progress_s)) {
          mn_trainer_progress(tr, epoch, s_in, ts.loss_sum / ts.count, now - t0, (long)samples);
          last_print = now;
        }
      }
      if (stopping) {
        s_in++, step++;
        break;
      }
    }
    double seconds = MPI_Wtime() - t0;
    bool epoch_done = s_in == spe;
    long long epochs_done = epoch_done ? epoch + 1 : epoch;
    double t_eval = MPI_Wtime();
    if (mn_trainer_report(tr, epoch + 1, step, &ts, seconds, samples) != 0) return -1;
    double t_ckpt = MPI_Wtime();
    mn_timeline_add(&tr->tl, MN_TL_EVAL, 0, step - 1, t_eval, t_ckpt);
    bool last = step == stop;
    bool due = epoch_done && s->every_epochs > 0 && (epoch + 1) % s->every_epochs == 0;
    if ((due || last || stopping) && save_checkpoint(tr, step, epochs_done) != 0) return -1;
    if (due || last || stopping)
      mn_timeline_add(&tr->tl, MN_TL_CHECKPOINT, 0, step - 1, t_ckpt, MPI_Wtime());
    if (stopping) {
      if (tr->w.rank == 0)
        printf("stopped by a signal after step %lld: checkpoint written to %s; continue with "
               "--resume %s (exit status %d)\n",
               step, s->run_dir, s->run_dir, MN_EXIT_REQUEUE);
      return 1;
    }
  }
  tr->final_step = step;
  return 0;
}

/* What every rank must agree on before the first collective of training. Ranks that were
 * given different arguments (an MPMD launch), read a different file under the same path on
 * another node, or run another build would otherwise hang or corrupt each other in the
 * first allreduce; here one allgather finds them and every rank stops with the same line. */
static int check_agreement(trainer *tr) {
  enum { FIELDS = 8 };
  static const char *const what[FIELDS] = {"effective config (hash)",
                                           "training rows",
                                           "values per sample",
                                           "outputs",
                                           "parameters",
                                           "layer state",
                                           "steps per epoch",
                                           "local batch"};
  const uint64_t config_hash = mn_fnv1a64(MN_FNV_SEED, tr->config_text, strlen(tr->config_text));
  const long long mine[FIELDS] = {(long long)(config_hash >> 1), (long long)tr->sampler.rows,
                                  (long long)tr->train.row_len,  tr->net.outputs,
                                  (long long)tr->net.nparams,    (long long)tr->net.nstate,
                                  tr->sampler.steps_per_epoch,   tr->sampler.local_batch};
  long long *all = malloc((size_t)tr->w.size * FIELDS * sizeof *all);
  if (!all) mn_world_abort(&tr->w, "out of memory");
  MPI_Allgather(mine, FIELDS, MPI_LONG_LONG, all, FIELDS, MPI_LONG_LONG, tr->w.comm);
  int rc = 0;
  for (int r = 1; r < tr->w.size && rc == 0; r++)
    for (int f = 0; f < FIELDS && rc == 0; f++)
      if (all[r * FIELDS + f] != all[f]) {
        rc = -1;
        if (tr->w.rank == 0)
          fprintf(stderr,
                  "mpinet: error: rank %d disagrees with rank 0 on the %s (%lld vs %lld): "
                  "different arguments, data files or builds on different ranks?\n",
                  r, what[f], all[r * FIELDS + f], all[f]);
      }
  free(all);
  return rc;
}

/* Everything before the loop: config, data, model, state, run directory. */
static int setup(trainer *tr, const char *config_path, char **sets, int nsets,
                 const char *resume_dir) {
  mn_err err;
  mn_world *w = &tr->w;
  char fallback[1100];
  if (!config_path) {
    snprintf(fallback, sizeof fallback, "%s/config.ini", resume_dir);
    config_path = fallback;
  }
  char *text = mn_world_bcast_file(w, config_path, 1 << 20);
  if (!text) return -1;
  int rc = mn_job_parse(&tr->cfg, config_path, text, sets, nsets, &err);
  free(text);
  if (rc == 0 && resume_dir) {
    char set[1100];
    snprintf(set, sizeof set, "checkpoint.dir=%s", resume_dir);
    rc = mn_config_set(&tr->cfg, set, &err);
  }
  if (rc == 0) rc = mn_job_settings(&tr->cfg, &tr->s, &err);
  if (mn_world_agree(w, rc, &err) != 0) return -1;
  mn_watchdog_start(w->rank, tr->s.watchdog_s);
  mn_watchdog_phase(MN_PHASE_DATA, -1);
  /* Test hooks (tests/faults.sh), MPINET_FAULT=KIND:RANK:STEP; at step STEP, rank RANK
   *   skip-batch  consumes the batch without training on it, as a rank with an off-by-one in
   *               its data would: the step records must stop the job before a deadlock;
   *   nan-grad    finds a NaN in its first layer's gradient (with a finite loss). */
  tr->fault_step = -1;
  const char *fault = getenv("MPINET_FAULT");
  char kind[16];
  int fault_rank;
  long long fault_step;
  if (fault && sscanf(fault, "%15[a-z-]:%d:%lld", kind, &fault_rank, &fault_step) == 3 &&
      fault_rank == w->rank) {
    tr->fault_step = fault_step - 1;
    tr->fault_nan = strcmp(kind, "nan-grad") == 0;
  }

  mn_settings *s = &tr->s;
  if (s->batch % w->size != 0) {
    mn_cfg_section *train = mn_config_section(&tr->cfg, "train");
    char where[700];
    mn_cfg_entry *e = train ? mn_cfg_find(train, "batch") : NULL;
    if (e)
      mn_cfg_where(train, e, where, sizeof where);
    else
      snprintf(where, sizeof where, "%s: [train] batch (default)", tr->cfg.path);
    mn_fail(&err,
            "%s: global batch %ld is not divisible by the %d ranks (each rank takes "
            "batch / ranks samples)",
            where, s->batch, w->size);
    mn_world_agree(w, -1, &err);
    return -1;
  }

  mn_split_info info;
  rc = mn_split_probe(s->data_path, "train", &info, &err);
  if (rc == 0)
    rc = mn_sampler_init(&tr->sampler, s->shuffle, w->rank, w->size, (uint64_t)s->seed, info.rows,
                         (int)s->batch, &err);
  if (rc == 0) {
    const mn_sampler *sm = &tr->sampler;
    const double held_mb = (double)sm->held * (double)mn_shape_count(info.shape) *
                           (info.x_is_u8 ? 1.0 : 4.0) / 1e6;
    if (s->memory_mb > 0.0 && held_mb > s->memory_mb && s->shuffle == MN_SHUFFLE_GLOBAL) {
      rc = mn_fail(&err,
                   "%s: [data] memory_mb = %g but global shuffling holds every training row "
                   "on every rank (%.1f MB): use shuffle = shard to stream from the file",
                   tr->cfg.path, s->memory_mb, held_mb);
    } else if (s->memory_mb > 0.0 && held_mb > s->memory_mb) {
      /* shard mode over budget: rows come from the file, a window at a time */
      tr->streaming = true;
      rc = mn_split_load(&tr->train, s->data_path, "train", sm->held_begin, sm->held_begin, &err);
      if (rc == 0)
        rc = mn_stream_open(&tr->stream, s->data_path, "train", sm->held_begin, sm->held,
                            (size_t)(s->memory_mb * 1e6), (uint64_t)s->seed, w->rank, &err);
    } else {
      rc = mn_split_load(&tr->train, s->data_path, "train", sm->held_begin,
                         sm->held_begin + sm->held, &err);
    }
  }
  if (rc == 0) rc = mn_eval_open(&tr->test, s->data_path, "test", (int)s->eval_batch, w, &err);
  int max_batch = (int)(s->batch / w->size > s->eval_batch ? s->batch / w->size : s->eval_batch);
  if (rc == 0) rc = mn_job_model(&tr->cfg, s, &info, max_batch, &tr->net, &err);
  if (rc == 0)
    rc = mn_net_set_tail(
        &tr->net,
        mn_record_tail(w->size) +
            (s->reproducible ? mn_repro_tail((int)s->virtual_shards, tr->net.nstate) : 0),
        &err);
  if (rc == 0)
    rc = mn_optim_setup(&s->opt, &tr->net, s->batch, tr->sampler.steps_per_epoch, s->epochs, &err);
  if (rc == 0) {
    const size_t eb = (size_t)s->eval_batch;
    tr->ex = mn_alloc(eb * tr->train.row_len, sizeof(float), "evaluation batch", &err);
    tr->ey = mn_alloc(eb, sizeof(int32_t), "evaluation batch", &err);
    tr->et = mn_alloc(eb * (size_t)info.classes, sizeof(float), "evaluation batch", &err);
    rc = tr->ex && tr->ey && tr->et ? 0 : -1;
  }
  /* auto: a prefetch thread only pays when this rank's CPUs include one it would not take from
   * a rank (not when mpirun bound the rank to one core, the default at np <= 2); it polls for
   * requests only when there is a CPU per rank to burn */
  if (s->prefetch == 2) s->prefetch = w->cpus > w->cpu_sharing;
  if (rc == 0)
    rc = mn_loader_init(&tr->loader, &tr->train, tr->sampler.local_batch, rows_for_step,
                        &tr->sampler, tr->sampler.held_begin, s->prefetch == 1, &err);
  if (rc == 0) tr->loader.poll = w->cpus >= 2 * w->cpu_sharing;
  if (rc == 0 && tr->streaming)
    mn_loader_use_stream(&tr->loader, &tr->stream, tr->sampler.steps_per_epoch);
  if (rc == 0) {
    /* one BLAS thread per rank unless asked: ranks sharing a node must not fight for cores */
    const char *env = getenv("OPENBLAS_NUM_THREADS");
    int threads = s->threads > 0 ? (int)s->threads : env && atoi(env) > 0 ? atoi(env) : 1;
    openblas_set_num_threads(s->reproducible ? 1 : threads);
  }
  if (mn_world_agree(w, rc, &err) != 0) return -1;
  if (s->reproducible && mn_world_agree(w, mn_trainer_repro_setup(tr, &err), &err) != 0) return -1;
  /* Open MPI hands ranks a pty for stdout even when mpirun's output goes to a file, so
   * "auto" asks for stderr to be a terminal too (it is a pipe under mpirun). */
  tr->bar = s->progress == MN_PROGRESS_BAR ||
            (s->progress == MN_PROGRESS_AUTO && isatty(STDOUT_FILENO) && isatty(STDERR_FILENO));

  tr->config_text = mn_config_to_text(&tr->cfg);
  if (!tr->config_text) mn_world_abort(w, "out of memory");
  if (check_agreement(tr) != 0) return -1;

  /* The run directory: never overwrite an earlier run's checkpoints. */
  rc = 0;
  if (rc == 0 && w->rank == 0) {
    if (!resume_dir && mn_run_dir_has_checkpoints(s->run_dir))
      rc = mn_fail(&err,
                   "%s: already holds checkpoints of an earlier run; continue it with "
                   "--resume %s, or choose another checkpoint.dir",
                   s->run_dir, s->run_dir);
    if (rc == 0) rc = mn_mkdir_p(s->run_dir, &err);
    char path[1100];
    snprintf(path, sizeof path, "%s/finished", s->run_dir);
    unlink(path); /* a resumed run is not finished until it says so again */
    snprintf(path, sizeof path, "%s/config.ini", s->run_dir);
    if (rc == 0) rc = mn_write_file_atomic(path, tr->config_text, &err);
    snprintf(path, sizeof path, "%s/metrics.jsonl", s->run_dir);
    if (rc == 0 && !(tr->metrics = fopen(path, "a")))
      rc = mn_fail(&err, "%s: cannot open for appending", path);
  }
  if (mn_world_agree(w, rc, &err) != 0) return -1;
  return 0;
}

static void teardown(trainer *tr) {
  if (tr->metrics) fclose(tr->metrics);
  mn_loader_destroy(&tr->loader); /* first: its thread may be waiting on the stream */
  if (tr->streaming) mn_stream_close(&tr->stream);
  free(tr->ex), free(tr->ey), free(tr->et), free(tr->config_text);
  mn_optim_free(&tr->s.opt);
  mn_repro_free(&tr->repro, &tr->net);
  if (tr->own_grads) { /* collective, like everything that reaches teardown */
    mn_net_bind_grads(&tr->net, tr->own_grads);
    mn_node_reduce_free(&tr->node);
  }
  mn_net_destroy(&tr->net);
  mn_sampler_free(&tr->sampler);
  mn_split_free(&tr->train);
  mn_eval_close(&tr->test);
  mn_config_free(&tr->cfg);
}

static void describe(const trainer *tr) {
  const mn_net *net = &tr->net;
  char shape[64];
  mn_shape_format(net->in_shape, shape, sizeof shape);
  printf("mpinet: %d rank%s | data %s: %zu train rows, sample %s, %d %s", tr->w.size,
         tr->w.size > 1 ? "s" : "", tr->s.data_path, tr->sampler.rows, shape, net->outputs,
         tr->train.info.has_labels ? "classes" : "targets");
  if (tr->s.shuffle == MN_SHUFFLE_SHARD)
    printf(" | shard mode: rank 0 %s rows [%zu, %zu)", tr->streaming ? "streams" : "holds",
           tr->sampler.held_begin, tr->sampler.held_begin + tr->sampler.held);
  printf("\n");
  if (tr->streaming) {
    const mn_stream *st = &tr->stream;
    printf("streaming: %zu blocks of %zu rows (one HDF5 chunk each), windows of %zu blocks, two "
           "in memory: %.1f MB of data.memory_mb = %g\n",
           st->nblocks, st->block_rows, st->window_blocks,
           2.0 * (double)(st->window_rows * st->row_bytes) / 1e6, tr->s.memory_mb);
  }
  char layers[4096], prefetch[80];
  mn_net_describe(net, layers, sizeof layers);
  printf("model: %zu parameters\n%s", net->nparams, layers);
  snprintf(prefetch, sizeof prefetch, "%s (%d CPU%s for %d rank%s)",
           !tr->s.prefetch ? "off" : tr->loader.poll ? "on, polling" : "on", tr->w.cpus,
           tr->w.cpus > 1 ? "s" : "", tr->w.cpu_sharing, tr->w.cpu_sharing > 1 ? "s" : "");
  if (tr->s.reproducible)
    printf("reproducible: %d micro-batches of %d rows per step, %d on each rank, summed in one "
           "fixed binary tree (same bits at 1, 2, 4 ... %d ranks); OpenBLAS '%s', 1 thread; "
           "prefetch %s\n",
           tr->repro.shards, tr->repro.micro, tr->repro.per_rank, tr->repro.shards,
           openblas_get_corename(), prefetch);
  if (tr->s.reproducible && tr->repro.defer)
    printf("reproducible: dense layers on the fixed-sum GEMM; their weight gradients are "
           "computed once per step, as the rank's subtree of the micro-batches' sums\n");
  if (tr->sync.node)
    printf("gradient sync: summed in shared memory by each node's %d ranks, %zu chunks of %zu KB "
           "added by whichever rank is free%s; prefetch %s\n",
           tr->node.size, tr->node.nchunks, tr->node.chunk * sizeof(float) / 1024,
           tr->node.nodes > 1 ? ", then across the nodes by MPI, one slice per local rank" : "",
           prefetch);
  else if (!tr->s.reproducible)
    printf("gradient sync: %d bucket%s of %.2f MB, overlap %s%s%s%s; prefetch %s\n",
           tr->sync.nbuckets, tr->sync.nbuckets > 1 ? "s" : "",
           (double)tr->sync.bucket_floats * 4 / 1e6, tr->s.overlap ? "on" : "off",
           tr->tune_candidates ? " (fastest of the configurations timed at start-up)" : "",
           tr->node_err.msg[0] ? ", MPI: not in shared memory because " : "", tr->node_err.msg,
           prefetch);
  printf("batch %ld global (%d per rank), %ld steps/epoch, %ld epochs, %s lr %g (%s), run dir "
         "%s\n",
         tr->s.batch, tr->sampler.local_batch, tr->sampler.steps_per_epoch, tr->s.epochs,
         mn_optimizer_names[tr->s.opt.kind], tr->s.opt.lr, mn_schedule_names[tr->s.opt.schedule],
         tr->s.run_dir);
  fflush(stdout);
}

int mn_train_main(int argc, char **argv) {
  const char *resume = NULL;
  char **sets = calloc((size_t)argc + 1, sizeof *sets);
  int nsets = 0;
  static const struct option opts[] = {{"set", required_argument, 0, 's'},
                                       {"resume", required_argument, 0, 'r'},
                                       {"help", no_argument, 0, 'h'},
                                       {0, 0, 0, 0}};
  int c;
  optind = 1;
  opterr = mn_first_rank_env();
  while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    switch (c) {
    case 's': sets[nsets++] = optarg; break;
    case 'r': resume = optarg; break;
    case 'h':
      if (mn_first_rank_env()) usage(stdout);
      free(sets);
      return 0;
    default:
      if (mn_first_rank_env()) usage(stderr);
      free(sets);
      return 2;
    }
  }
  const char *config = optind < argc ? argv[optind] : NULL;
  if (optind + 1 < argc || (!config && !resume)) {
    if (mn_first_rank_env()) {
      fprintf(stderr, "mpinet: error: train: expected one CONFIG.ini (or --resume RUN_DIR)\n");
      usage(stderr);
    }
    free(sets);
    return 2;
  }

  trainer tr;
  memset(&tr, 0, sizeof tr);
  mn_world_init(&argc, &argv, &tr.w);
  mn_signals_install();
  tr.t_start = MPI_Wtime();
  mn_h5_quiet();
  int rc = setup(&tr, config, sets, nsets, resume);
  long long step = 0;
  if (rc == 0) rc = start_state(&tr, resume, &step);
  if (rc == 0) rc = mn_trainer_setup_sync(&tr, step);
  if (rc == 0) {
    mn_err err;
    rc = mn_timeline_init(&tr.tl, &tr.w, &tr.net, tr.sync.nbuckets, step, tr.s.timeline_steps,
                          &err);
    rc = mn_world_agree(&tr.w, rc, &err);
  }
  if (rc == 0) {
    if (tr.w.rank == 0) describe(&tr);
    rc = train_loop(&tr, step);
  }
  if ((rc == 0 || rc == 1) && tr.tl.ev) { /* every rank got here: the loop's ends are agreed */
    mn_err err;
    char path[1100];
    snprintf(path, sizeof path, "%s/timeline.json", tr.s.run_dir);
    if (mn_timeline_write(&tr.tl, &tr.w, &tr.net, path, &err) != 0)
      fprintf(stderr, "mpinet: warning: %s\n", err.msg);
    else if (tr.w.rank == 0)
      printf("timeline: %s (%zu events per rank from step %lld on; open it in "
             "https://ui.perfetto.dev or chrome://tracing)\n",
             path, tr.tl.n, tr.tl.first + 1);
  }
  /* the whole run's peak, final checkpoint included (metrics.jsonl's is taken before each
   * epoch's checkpoint), the largest of any rank */
  double peak_rss = mn_peak_rss_mb();
  if (rc == 0) MPI_Allreduce(MPI_IN_PLACE, &peak_rss, 1, MPI_DOUBLE, MPI_MAX, tr.w.comm);
  if (rc == 0 && tr.w.rank == 0) {
    printf("done: final test_loss %.4f", tr.last_test_loss);
    if (tr.test.meta.info.has_labels) printf("  test_accuracy %.2f%%", 100.0 * tr.last_test_acc);
    char sha[65];
    mn_sha256_hex(tr.net.params, tr.net.nparams * sizeof(float), sha);
    printf(" | replicas identical on all %d ranks (fnv1a64 %016" PRIx64 ") | run dir %s\n",
           tr.w.size, mn_net_param_hash(&tr.net), tr.s.run_dir);
    printf("parameters sha256 %s\npeak memory %.1f MiB (the largest rank, whole run)\n", sha,
           peak_rss);
    /* the run's own word that it reached its end: job scripts check it rather than trust a
     * launcher's exit status (srun exits 0 when it fails to launch the tasks) */
    char path[1100], text[256];
    snprintf(path, sizeof path, "%s/finished", tr.s.run_dir);
    snprintf(text, sizeof text, "step %lld\nparameters sha256 %s\npeak_rss_mb %.1f\n",
             tr.final_step, sha, peak_rss);
    mn_err err;
    if (mn_write_file_atomic(path, text, &err) != 0)
      fprintf(stderr, "mpinet: warning: %s\n", err.msg);
  }
  mn_watchdog_stop();
  mn_timeline_free(&tr.tl);
  teardown(&tr);
  free(sets);
  mn_world_finalize();
  return rc == 0 ? 0 : rc == 1 ? MN_EXIT_REQUEUE : 1;
}
