/* train_setup.c: everything a training run does before its first step and after its last:
 * the config (with --set and --resume), the data, the model, the loader, the checks that
 * every rank was started alike, the run directory; and the start-up summary rank 0 prints. */
#define _GNU_SOURCE
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cblas.h>

#include "data_stats.h"
#include "fileutil.h"
#include "gemm.h"
#include "h5util.h"
#include "hash.h"
#include "job.h"
#include "run_dir.h"
#include "shared_rows.h"
#include "sim.h"
#include "step_record.h"
#include "trainer.h"
#include "watchdog.h"
#include "world.h"

/* The sampler, as the loader's source of row indices (called on the prefetch thread). */
static int rows_for_step(void *user, long long step, size_t *pos, uint32_t *rows) {
  mn_sampler *sm = user;
  return mn_sampler_batch(sm, (long)(step / sm->steps_per_epoch),
                          (long)(step % sm->steps_per_epoch), pos, rows);
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
                                           "largest local batch"};
  const uint64_t config_hash = mn_fnv1a64(MN_FNV_SEED, tr->config_text, strlen(tr->config_text));
  const long long mine[FIELDS] = {(long long)(config_hash >> 1), (long long)tr->sampler.rows,
                                  (long long)tr->train.row_len,  tr->net.outputs,
                                  (long long)tr->net.nparams,    (long long)tr->net.nstate,
                                  tr->sampler.steps_per_epoch,   tr->sampler.max_local};
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

/* The training rows' source and the test rows' (tr->has_test): the test datasets named by
 * the config, or a fraction held out of the training rows, or, when neither is asked for,
 * the test datasets of the training files if they have them. */
static int open_data(trainer *tr, mn_err *err) {
  const mn_settings *s = &tr->s;
  mn_source_spec spec = mn_job_train_spec(s);
  if (s->test_fraction > 0.0) {
    mn_source all;
    if (mn_source_open(&all, &spec, err) != 0) return -1;
    const int rc = mn_source_holdout(&all, s->test_fraction, (uint64_t)s->split_seed, &tr->src,
                                     &tr->test_src, err);
    mn_source_free(&all);
    tr->has_test = rc == 0;
    return rc;
  }
  if (mn_source_open(&tr->src, &spec, err) != 0) return -1;
  spec = mn_job_test_spec(s);
  if (!s->test_explicit && !mn_h5_file_has(tr->src.files[0].path, spec.x)) {
    tr->has_test = false;
    return 0;
  }
  if (mn_source_open(&tr->test_src, &spec, err) != 0) return -1;
  tr->has_test = true;
  return 0;
}

/* The training rows' statistics when normalise = feature|channel or standardise_targets
 * (collective), for RUN_DIR/normalisation.json; then the test rows take the training rows'
 * normalisation. */
static int normalise_data(trainer *tr, mn_err *err) {
  mn_data_stats st;
  int rc = mn_data_stats_apply(&tr->w, &tr->src, tr->s.standardise_targets, &st, err);
  if (mn_world_agree(&tr->w, rc, err) != 0) return -1;
  /* written with the run directory, once it is known to be this run's (below) */
  if (tr->w.rank == 0 && (st.ninputs || st.ntargets) &&
      !(tr->normalisation_json = mn_data_stats_json(&st, &tr->src)))
    rc = mn_fail(err, "out of memory");
  mn_data_stats_free(&st);
  if (rc == 0 && tr->has_test) rc = mn_source_match(&tr->test_src, &tr->src, err);
  return rc;
}

/* Everything before the loop: config, data, model, state, run directory. */
int mn_trainer_setup(trainer *tr, const char *config_path, char **sets, int nsets,
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
   *   nan-grad    finds a NaN in its first layer's gradient (with a finite loss);
   *   stop        asks to stop, as a signal arriving during that step would;
   *   starve-reader  (STEP ignored) its stream's background reader gets no CPU from the
   *               start (mn_stream_starve), as when another job takes the CPU it seemed
   *               to have spare: the run must replace it and train the same bits. */
  tr->fault_step = -1;
  const char *fault = getenv("MPINET_FAULT");
  char kind[16];
  int fault_rank;
  long long fault_step;
  bool starve_reader = false;
  if (fault && sscanf(fault, "%15[a-z-]:%d:%lld", kind, &fault_rank, &fault_step) == 3 &&
      fault_rank == w->rank) {
    starve_reader = strcmp(kind, "starve-reader") == 0;
    tr->fault_step = starve_reader ? -1 : fault_step - 1;
    tr->fault_nan = strcmp(kind, "nan-grad") == 0;
    tr->fault_stop = strcmp(kind, "stop") == 0;
  }

  mn_settings *s = &tr->s;
#ifdef MPINET_SIMULATE
  /* before anything is allocated: the parameter buffers are shared in this mode */
  if (mn_sim_timing_setup(w->rank) && s->reproducible) {
    mn_fail(&err,
            "%s: [train] reproducible: the timing-only simulation (MPINET_SIM_TIMING_ONLY) "
            "skips the computation reproducible mode is made of; simulate it without",
            tr->cfg.path);
    mn_world_agree(w, -1, &err);
    return -1;
  }
#endif
  if (s->batch < w->size) {
    mn_cfg_section *train = mn_config_section(&tr->cfg, "train");
    char where[700];
    mn_cfg_entry *e = train ? mn_cfg_find(train, "batch") : NULL;
    if (e)
      mn_cfg_where(train, e, where, sizeof where);
    else
      snprintf(where, sizeof where, "%s: [train] batch (default)", tr->cfg.path);
    mn_fail(&err, "%s: global batch %ld is smaller than the %d ranks (every rank needs a row)",
            where, s->batch, w->size);
    mn_world_agree(w, -1, &err);
    return -1;
  }

  rc = open_data(tr, &err);
  if (mn_world_agree(w, rc, &err) != 0) return -1;
  if (mn_world_agree(w, normalise_data(tr, &err), &err) != 0) return -1;
  const mn_split_info info = tr->src.info;
  rc = mn_sampler_init(&tr->sampler, s->shuffle, w->rank, w->size, (uint64_t)s->seed, info.rows,
                       (int)s->batch, &err);
  if (mn_world_agree(w, rc, &err) != 0) return -1;
  if (rc == 0) {
    const mn_sampler *sm = &tr->sampler;
    const double held_mb =
        (double)sm->held * (double)mn_shape_count(info.shape) * (info.x_is_u8 ? 1.0 : 4.0) / 1e6;
    if (s->memory_mb > 0.0 && held_mb > s->memory_mb && s->shuffle == MN_SHUFFLE_GLOBAL) {
      rc = mn_fail(&err,
                   "%s: [data] memory_mb = %g but global shuffling holds every training row "
                   "on every rank (%.1f MB): use shuffle = shard to stream from the files",
                   tr->cfg.path, s->memory_mb, held_mb);
    } else if (s->memory_mb > 0.0 && held_mb > s->memory_mb) {
      /* shard mode over budget: rows come from the files, a window at a time */
      tr->streaming = true;
      mn_split_borrow(&tr->train, &tr->src, sm->held_begin, 0, NULL, NULL, NULL);
      rc = mn_stream_open(&tr->stream, &tr->src, sm->held_begin, sm->held,
                          (size_t)(s->memory_mb * 1e6), (uint64_t)s->seed, w->rank, &err);
    } else if (s->shuffle == MN_SHUFFLE_GLOBAL && s->share_memory) {
      /* collective: every rank takes this branch (the config and the data agree) */
      rc = mn_shared_rows_load(&tr->shared_rows, w, &tr->src, sm->held_begin, sm->held, &tr->train,
                               &err);
    } else {
      rc = mn_split_load(&tr->train, &tr->src, sm->held_begin, sm->held_begin + sm->held, &err);
    }
  }
  /* timing-only simulation: evaluating parameters that mean nothing would cost every rank a
   * forward pass's buffers (OpenBLAS's included: 22 GB for the CNN at 1024 ranks) and time */
  if (mn_sim_timing_on()) tr->has_test = false;
  if (rc == 0 && tr->has_test)
    rc = mn_eval_open(&tr->test, &tr->test_src, (int)s->eval_batch, w, &err);
  const int max_batch =
      (int)(tr->sampler.max_local > s->eval_batch ? tr->sampler.max_local : s->eval_batch);
  if (rc == 0) rc = mn_job_model(&tr->cfg, s, &info, max_batch, &tr->net, &tr->augment, &err);
  if (rc == 0) tr->net.target_std = tr->src.target_std;
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
  /* one BLAS thread per rank unless asked: ranks sharing a node must not fight for cores */
  const char *env = getenv("OPENBLAS_NUM_THREADS");
  tr->threads = s->reproducible        ? 1
                : s->threads > 0       ? (int)s->threads
                : env && atoi(env) > 0 ? atoi(env)
                                       : 1;
  openblas_set_num_threads(tr->threads);
  mn_gemm_set_threads(tr->threads); /* more than 1: the large GEMMs are OpenBLAS's */
  /* auto: a prefetch thread only pays when this rank's CPUs include one that neither a rank
   * nor its BLAS threads take (not when mpirun bound the rank to one core, the default at np
   * <= 2); it polls for requests only when there is such a CPU per rank to burn */
  const int taken = w->cpu_sharing * tr->threads;
  if (s->prefetch == 2) s->prefetch = w->cpus > taken;
  if (rc == 0)
    rc = mn_loader_init(&tr->loader, &tr->train, tr->sampler.max_local, rows_for_step, &tr->sampler,
                        tr->sampler.held_begin, s->prefetch == 1, &err);
  if (rc == 0)
    rc = mn_loader_augment(&tr->loader, &tr->augment, (uint64_t)s->seed,
                           tr->sampler.steps_per_epoch, tr->src.b, &err);
  const bool spare_cpu = w->cpus >= taken + w->cpu_sharing;
  if (rc == 0) tr->loader.poll = spare_cpu;
  if (rc == 0 && tr->streaming) {
    mn_loader_use_stream(&tr->loader, &tr->stream, tr->sampler.steps_per_epoch);
    /* with no spare CPU, the reader's turns on the training thread's own are the cost */
    tr->stream_background = spare_cpu && mn_stream_set_background(&tr->stream);
    if (starve_reader) mn_stream_starve(&tr->stream);
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
    snprintf(path, sizeof path, "%s/normalisation.json", s->run_dir);
    if (rc == 0 && tr->normalisation_json)
      rc = mn_write_file_atomic(path, tr->normalisation_json, &err);
    snprintf(path, sizeof path, "%s/metrics.jsonl", s->run_dir);
    if (rc == 0 && !(tr->metrics = fopen(path, "a")))
      rc = mn_fail(&err, "%s: cannot open for appending", path);
  }
  if (mn_world_agree(w, rc, &err) != 0) return -1;
  return 0;
}

void mn_trainer_teardown(trainer *tr) {
  if (tr->metrics) fclose(tr->metrics);
  mn_loader_destroy(&tr->loader); /* first: its thread may be waiting on the stream */
  if (tr->streaming) mn_stream_close(&tr->stream);
  free(tr->ex), free(tr->ey), free(tr->et), free(tr->config_text), free(tr->normalisation_json);
  mn_optim_free(&tr->s.opt);
  mn_repro_free(&tr->repro, &tr->net);
  if (tr->compressing) mn_compress_free(&tr->comp);
  mn_ckpt_meta_free(&tr->resumed);
  if (tr->own_grads) { /* collective, like everything that reaches teardown */
    mn_net_bind_grads(&tr->net, tr->own_grads);
    mn_node_reduce_free(&tr->node);
  }
  mn_net_destroy(&tr->net);
  mn_sampler_free(&tr->sampler);
  mn_split_free(&tr->train);
  mn_shared_rows_free(&tr->shared_rows); /* collective, as above */
  mn_eval_close(&tr->test);
  mn_source_free(&tr->src);
  mn_source_free(&tr->test_src);
  mn_config_free(&tr->cfg);
}

void mn_trainer_describe(const trainer *tr) {
  const mn_net *net = &tr->net;
  char shape[64];
  mn_shape_format(net->in_shape, shape, sizeof shape);
  const mn_source *src = &tr->src;
  printf("mpinet: %d rank%s | data %s (%zu file%s): %zu train rows, sample %s, %d %s", tr->w.size,
         tr->w.size > 1 ? "s" : "", tr->s.data_path, src->nfiles, src->nfiles > 1 ? "s" : "",
         tr->sampler.rows, shape, net->outputs, tr->train.info.has_labels ? "classes" : "targets");
  if (tr->shared_rows.active) printf(" | rows held once per node (shared memory)");
  if (tr->s.shuffle == MN_SHUFFLE_SHARD)
    printf(" | shard mode: rank 0 %s rows [%zu, %zu)", tr->streaming ? "streams" : "holds",
           tr->sampler.held_begin, tr->sampler.held_begin + tr->sampler.held);
  printf(" | %d BLAS thread%s per rank%s\n", tr->threads, tr->threads > 1 ? "s" : "",
         tr->threads > 1 ? " (large GEMMs on OpenBLAS)" : ""); /* gemm.h */
  printf("data: x %s, y %s, layout %s, normalise %s; ", src->x, src->y,
         mn_layout_names[src->layout], src->norm);
  if (!tr->has_test)
    printf("no test rows (no %s in %s, and no test_path or test_fraction): training runs "
           "without evaluation\n",
           tr->s.test_x, src->files[0].path);
  else if (tr->s.test_fraction > 0.0)
    printf("test: %zu rows held out of the training files (test_fraction %g, split_seed %ld; "
           "rows fingerprint %016" PRIx64 ")\n",
           tr->test_src.info.rows, tr->s.test_fraction, tr->s.split_seed,
           mn_source_fingerprint(&tr->test_src));
  else
    printf("test: %zu rows of %s %s\n", tr->test_src.info.rows, tr->test_src.label, tr->test_src.x);
  if (src->note[0]) printf("mpinet: warning: %s\n", src->note);
  if (tr->streaming) {
    const mn_stream *st = &tr->stream;
    printf(
        "streaming: %zu blocks of up to %zu rows (one HDF5 chunk each), windows of %zu blocks, two "
        "in memory: %.1f MB of data.memory_mb = %g; reader %s\n",
        st->nblocks, st->block_rows, st->window_blocks,
        2.0 * (double)(st->window_rows * st->row_bytes) / 1e6, tr->s.memory_mb,
        tr->stream_background ? "in the background (idle priority)" : "at normal priority");
  }
#ifdef MPINET_SIMULATE
  printf("simulated (mpinet-sim under SimGrid's smpirun): gradients in one blocking MPI "
         "allreduce per step; off in this build: the node's shared-memory sum and shared "
         "rows, prefetch and watchdog threads, overlapped buckets\n");
  if (mn_sim_timing_on())
    printf("timing only (MPINET_SIM_TIMING_ONLY): parameter buffers shared by all ranks, forward "
           "and backward computed by rank 0 and charged to the others: this run does not train, "
           "its losses and checks mean nothing; no evaluation\n");
#endif
  char prefetch[80], memory[256];
  /* a line per layer: a graph's lines name inputs too (a ResNet-20 has 53) */
  const size_t len = (size_t)net->nlayers * 256 + 1;
  char *layers = malloc(len);
  if (layers) {
    mn_net_describe(net, layers, len);
    printf("model: %zu parameters\n%s", net->nparams, layers);
    free(layers);
  }
  mn_net_describe_memory(net, memory, sizeof memory);
  printf("%s\n", memory);
  if (tr->augment.on) {
    char aug[160];
    mn_augment_describe(&tr->augment, aug, sizeof aug);
    printf("augment (training batches): %s\n", aug);
  }
  snprintf(prefetch, sizeof prefetch, "%s (%d CPU%s for %d rank%s)",
           !tr->s.prefetch   ? "off"
           : tr->loader.poll ? "on, polling"
                             : "on",
           tr->w.cpus, tr->w.cpus > 1 ? "s" : "", tr->w.cpu_sharing,
           tr->w.cpu_sharing > 1 ? "s" : "");
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
    printf("gradient sync: summed in shared memory by each node's %d ranks, %zu chunk%s of %zu "
           "KB added by whichever rank is free%s; prefetch %s\n",
           tr->node.size, tr->node.nchunks, tr->node.nchunks > 1 ? "s" : "",
           tr->node.chunk * sizeof(float) / 1024,
           tr->node.nodes > 1 ? ", then across the nodes by MPI, one slice per local rank" : "",
           prefetch);
  else if (!tr->s.reproducible)
    printf("gradient sync: %d bucket%s of %.2f MB, overlap %s%s%s%s; prefetch %s\n",
           tr->sync.nbuckets, tr->sync.nbuckets > 1 ? "s" : "",
           (double)tr->sync.bucket_floats * 4 / 1e6, tr->s.overlap ? "on" : "off",
           tr->tune_candidates ? " (fastest of the configurations timed at start-up)" : "",
           tr->node_err.msg[0] ? ", MPI: not in shared memory because " : "", tr->node_err.msg,
           prefetch);
  if (tr->compressing)
    printf("gradient compression: %s sums %s (each partial sum rounded to 16 bits), error "
           "feedback on; the step records stay float32\n",
           mn_compress_names[tr->comp.kind],
           tr->sync.node ? "between the nodes" : "in every MPI bucket");
  else if (tr->comp_note[0])
    printf("gradient compression: off: %s\n", tr->comp_note);
  if (tr->s.sync_every > 1) {
    char warm[96] = "";
    if (tr->s.sync_warmup_epochs > 0)
      snprintf(warm, sizeof warm, " after %g epoch%s of synchronous steps",
               tr->s.sync_warmup_epochs, tr->s.sync_warmup_epochs == 1 ? "" : "s");
    printf("local SGD: every rank steps on its own batch's gradients%s, and the replicas' "
           "parameters and optimizer state are averaged every %ld steps and before every "
           "evaluation, checkpoint and stop; the step records still travel every step\n",
           warm, tr->s.sync_every);
  }
  char per_rank[48];
  if (tr->sampler.extra)
    snprintf(per_rank, sizeof per_rank, "%d or %d per rank", tr->sampler.base,
             tr->sampler.max_local);
  else
    snprintf(per_rank, sizeof per_rank, "%d per rank", tr->sampler.base);
  printf("batch %ld global (%s), %ld steps/epoch, %ld epochs, %s lr %g (%s), run dir %s\n",
         tr->s.batch, per_rank, tr->sampler.steps_per_epoch, tr->s.epochs,
         mn_optimizer_names[tr->s.opt.kind], tr->s.opt.lr, mn_schedule_names[tr->s.opt.schedule],
         tr->s.run_dir);
  fflush(stdout);
}
