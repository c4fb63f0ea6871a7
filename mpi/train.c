/* train.c: `mpinet train`: the synchronous data-parallel training loop.
 *
 * Every rank: same config, same initial parameters (broadcast from rank 0), its own slice
 * of each global batch, local forward/backward, ONE allreduce of the gradient buffer, the
 * same SGD update. Rank 0 reports, writes metrics.jsonl and checkpoints. Every failure goes
 * through world.h's policy: agreed by all ranks, or an abort of the whole job. Set-up is in
 * train_setup.c, the start state and checkpoints in resume.c. */
#define _GNU_SOURCE
#include "train.h"

#include <getopt.h>
#include <inttypes.h>
#include <malloc.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fileutil.h"
#include "grad_sync.h"
#include "h5util.h"
#include "job.h"
#include "loader.h"
#include "sha256.h"
#include "sim.h"
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
          "  --set train.grad_compression=bf16, --set train.sync_every=K  for slow networks:\n"
          "                           16-bit gradient sums, or local SGD averaging every K\n"
          "                           steps (README \"Slow links\")\n"
          "  SIGUSR1 or SIGTERM to any rank (SIGUSR1 to mpirun, which forwards it): every rank\n"
          "  stops after the same step, a checkpoint is written, exit status 75: requeue and\n"
          "  --resume. A rank without progress for train.watchdog_seconds ends the job.\n"
          "Exit status: 0 done, 1 error (one line 'mpinet: error: ...'), 2 bad usage,\n"
          "3 watchdog (no progress), 75 stopped by a signal after a checkpoint.\n");
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
  rec[MN_REC_STOP] = mn_stop_signal() || (tr->fault_stop && step == tr->fault_step) ? 1 : 0;
  rec[MN_REC_STEP] = (uint32_t)step;
  rec[MN_REC_LAYOUT] = tr->layout_hash;
  rec[MN_REC_LEFT] = (uint32_t)(stop - step);
  mn_record_write(net->grads + net->nparams, tr->w.size, tr->w.rank, rec);
}

/* "loss at step 7 (epoch 1) on rank 1 (first non-finite output: layer 02_dense)" */
static void describe_fault(const trainer *tr, const mn_record_verdict *v, long long step, char *buf,
                           size_t len) {
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
           !name  ? "every layer's output finite: the loss itself overflowed"
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

/* Local SGD ([train] sync_every = K > 1): every rank's parameters and optimizer state
 * become their mean (collective). */
static void average_replicas(trainer *tr) {
  mn_mean_floats(&tr->w, tr->net.params, tr->net.nparams);
  for (int b = 0; b < tr->s.opt.nbuf; b++) mn_mean_floats(&tr->w, tr->s.opt.buf[b], tr->net.nparams);
}

/* The loop proper; returns 0 when done, 1 when stopped by a signal (after a checkpoint), or
 * -1 on errors (already reported). */
static int train_loop(trainer *tr, long long step) {
  const mn_settings *s = &tr->s;
  const long spe = tr->sampler.steps_per_epoch;
  const long long total = s->epochs * spe;
  const long long stop = s->max_steps > 0 && s->max_steps < total ? s->max_steps : total;
  const bool tty = tr->w.rank == 0 && tr->bar;
  mn_net *net = &tr->net;
  const bool repro = s->reproducible;
  /* backward replaces the gradients (reproducible mode adds up its micro-batches') */
  mn_pass pass = {.training = true, .seed = (uint64_t)s->seed, .fresh_grads = !repro};
  /* (timing-only simulation: a layer's sums would be skipped on the ranks that skip its
   * forward, so SyncBN sums locally there; sim.h) */
  if (tr->w.size > 1 && !repro && !mn_sim_timing_on()) {
    pass.allreduce_sum = mn_allreduce_doubles;
    pass.allreduce_user = &tr->w;
  }
  if (!repro) { /* also at 1 rank: the gradient scan skips what backward vouched for */
    pass.listen.grads_ready = mn_grad_sync_ready;
    pass.listen.grads_user = &tr->sync;
    pass.listen.grads_blocks = tr->w.size > 1 ? 4 : 1;
  }
  mn_loader_start(&tr->loader, step);
  /* Reproducible mode adds up into the gradients, and from here on its optimizer zeroes
   * them; elsewhere backward replaces them and each step's record rewrites the tail. */
  if (repro) mn_net_zero_grads(net);
  bool stopping = false;
  /* local SGD after sync_warmup_epochs of synchronous steps; the periods count from there,
   * by step number, so a resumed run averages where an uninterrupted one would */
  const long long warm = (long long)ceil(s->sync_warmup_epochs * (double)spe);

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
      const int lb = b->count; /* this rank's share of the step (sampler.h) */
      if (step == tr->fault_step && !tr->fault_nan && !tr->fault_stop) { /* test hook, setup() */
        tr->fault_step = -1;
        continue;
      }
      double tb = MPI_Wtime();
      mn_watchdog_phase(MN_PHASE_FORWARD, step);
      const bool traced = mn_timeline_on(&tr->tl, step);
      tr->sync.timing = traced;
      /* per-layer events only in the normal mode: not once per micro-batch */
      pass.listen.layer_done = traced && !repro ? mn_timeline_layer : NULL;
      pass.listen.layer_user = &tr->tl;
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
        /* a local SGD step: no gradient sum, each rank steps on its own batch's mean */
        tr->local_step = s->sync_every > 1 && step >= warm;
        pass.listen.grads_ready = tr->local_step ? NULL : mn_grad_sync_ready;
        tr->bad_layer = -1;
        if (!mn_sim_skip(MN_SIM_FORWARD, lb)) { /* (always false outside mpinet-sim: sim.h) */
          mn_trainer_forward_loss(tr, &pass, b, 0, lb, &st);
          /* before backward, which may write gradients over layer outputs */
          if (!isfinite(st.loss_sum)) tr->bad_layer = mn_net_first_nonfinite_output(net, lb);
          mn_sim_computed();
        }
        tc = MPI_Wtime();
        mn_watchdog_phase(MN_PHASE_BACKWARD, step);
        tr->tl.layer_t = tc;
        mn_grad_sync_begin(&tr->sync);
        /* test hook: a NaN in the input the first layer's weight gradient is made of (the
         * loss, computed before, stays finite; backward replaces what the buffer held) */
        if (step == tr->fault_step && tr->fault_nan) b->x[0] = NAN;
        if (!mn_sim_skip(MN_SIM_BACKWARD, lb)) {
          mn_net_backward(net, &pass, b->x, lb, NULL);
          mn_sim_computed();
        }
        mn_grad_sync_scan_rest(&tr->sync); /* a local step: this rank's own gradients */
      }
      write_record(tr, &st, step, stop);
      double td = MPI_Wtime();
      mn_watchdog_phase(MN_PHASE_ALLREDUCE, step);
      if (repro)
        mn_trainer_repro_allreduce(tr);
      else if (tr->local_step) { /* the records alone, every step (step_record.h) */
        mn_grad_allreduce(&tr->w, net->grads + net->nparams, net->tail);
        tr->sync.timed = 0; /* no buckets to trace */
      }
      else
        mn_grad_sync_finish(&tr->sync);
      double te = MPI_Wtime();
      mn_watchdog_phase(MN_PHASE_OPTIMIZER, step);
      /* every rank read the same records, so all take the same decisions at this step */
      mn_record_verdict v;
      const float *sum = tr->local_step ? net->grads : mn_grad_sync_sum(&tr->sync);
      mn_record_read(sum + net->nparams, tr->w.size, &v);
      const bool numbers = !mn_sim_timing_on(); /* timing-only: they mean nothing (sim.h) */
      if (!numbers) v = (mn_record_verdict){0};
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
      /* 16-bit sums can overflow where every rank's gradient was finite; all ranks read the
       * same sum, so all see it */
      const bool sum_bad = numbers && tr->compressing && !tr->local_step &&
                           v.loss_ranks + v.grad_ranks == 0 &&
                           mn_first_nonfinite(sum, net->nparams) < net->nparams;
      if (v.loss_ranks + v.grad_ranks > 0 || sum_bad) {
        char what[400];
        if (sum_bad)
          snprintf(what, sizeof what,
                   "the %s gradient sum of step %lld (epoch %lld) is not finite although every "
                   "rank's gradients were (16-bit overflow%s)",
                   mn_compress_names[tr->comp.kind], step + 1, epoch + 1,
                   tr->comp.kind == MN_COMPRESS_FP16 ? "; bf16 has float32's range" : "");
        else
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
        if (repro) mn_net_zero_grads(net); /* the optimizer that zeroes them does not run */
        skipped = true;
      }
      if (!skipped) mn_optim_step(&tr->s.opt, net->params, sum, repro ? net->grads : NULL, step);
      /* local SGD: the replicas meet every sync_every steps, and before anything that reads
       * or saves them (the end of an epoch or of the run, an evaluation, a stop) */
      double t_avg = 0.0;
      if (tr->local_step && ((step + 1 - warm) % s->sync_every == 0 || stopping ||
                             s_in + 1 == spe || step + 1 == stop ||
                             (s->eval_every_steps > 0 && (step + 1) % s->eval_every_steps == 0))) {
        t_avg = MPI_Wtime();
        average_replicas(tr);
        t_avg = MPI_Wtime() - t_avg;
      }
      double tf = MPI_Wtime();
      if (traced) trace_step(tr, step, ta, tb, tc, td, te, tf);
      if (tr->first_step_unix == 0.0) tr->first_step_unix = mn_unix_now();
      if (s->check_allocations && check_heap(tr, step) != 0) return -1;
      ts.time[PHASE_DATA] += tb - ta;
      ts.time[PHASE_FORWARD] += tc - tb;
      ts.time[PHASE_BACKWARD] += td - tc;
      ts.time[PHASE_COMM] += te - td + t_avg;
      ts.time[PHASE_OPTIMIZER] += tf - te - t_avg;
      if (tr->sync.node && !tr->local_step) ts.comm_before_last += tr->node.waited_s;
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
      /* an evaluation inside the epoch ([train] eval_every_steps): the epoch goes on after it */
      if (s->eval_every_steps > 0 && (step + 1) % s->eval_every_steps == 0 && s_in + 1 < spe &&
          step + 1 < stop) {
        s_in++, step++;
        break;
      }
    }
    double seconds = MPI_Wtime() - t0;
    if (tr->stream_background && mn_stream_demoted(&tr->stream)) {
      fprintf(stderr,
              "mpinet: warning: rank %d: the stream's reader starved at idle priority (is "
              "another job on this rank's CPUs?); it reads at normal priority from now on\n",
              tr->w.rank);
      tr->stream_background = false;
    }
    bool epoch_done = s_in == spe;
    long long epochs_done = epoch_done ? epoch + 1 : epoch;
    double t_eval = MPI_Wtime();
    if (mn_trainer_report(tr, epoch + 1, step, &ts, seconds, samples) != 0) return -1;
    double t_ckpt = MPI_Wtime();
    mn_timeline_add(&tr->tl, MN_TL_EVAL, 0, step - 1, t_eval, t_ckpt);
    bool last = step == stop;
    bool due = epoch_done && s->every_epochs > 0 && (epoch + 1) % s->every_epochs == 0;
    if ((due || last || stopping) && mn_trainer_save_checkpoint(tr, step, epochs_done) != 0)
      return -1;
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
  int rc = mn_trainer_setup(&tr, config, sets, nsets, resume);
  long long step = 0;
  if (rc == 0) rc = mn_trainer_start_state(&tr, resume, &step);
  if (rc == 0) rc = mn_trainer_setup_sync(&tr, step);
  if (rc == 0) {
    mn_err err;
    rc =
        mn_timeline_init(&tr.tl, &tr.w, &tr.net, tr.sync.nbuckets, step, tr.s.timeline_steps, &err);
    rc = mn_world_agree(&tr.w, rc, &err);
  }
  if (rc == 0) {
    if (tr.w.rank == 0) mn_trainer_describe(&tr);
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
    printf("done:");
    if (tr.has_test) printf(" final test_loss %.4f", tr.last_test_loss);
    if (tr.has_test && tr.src.info.has_labels)
      printf("  test_accuracy %.2f%%", 100.0 * tr.last_test_acc);
    if (!tr.has_test) printf(" no test rows");
    char sha[65];
    mn_sha256_hex(tr.net.params, tr.net.nparams * sizeof(float), sha);
    if (tr.w.size > 1)
      printf(" | replicas identical on all %d ranks", tr.w.size);
    else
      printf(" | 1 rank");
    printf(" (fnv1a64 %016" PRIx64 ") | run dir %s\n", mn_net_param_hash(&tr.net), tr.s.run_dir);
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
  mn_trainer_teardown(&tr);
  free(sets);
  mn_world_finalize();
  return rc == 0 ? 0 : rc == 1 ? MN_EXIT_REQUEUE : 1;
}
