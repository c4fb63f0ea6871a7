/* resume.c: where a run starts and what it leaves to start from: fresh parameters or the
 * run directory's latest checkpoint (falling back to the newest older one that loads),
 * broadcast from rank 0; and the checkpoints rank 0 writes, committed to the run directory
 * only once complete. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint.h"
#include "grad_sync.h"
#include "run_dir.h"
#include "trainer.h"
#include "watchdog.h"
#include "world.h"

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

int mn_trainer_start_state(trainer *tr, const char *resume_dir, long long *step) {
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
        /* the residuals wait for the gradient sync's set-up (sync_setup.c) */
        tr->resumed.residuals = m.residuals, tr->resumed.residual_rows = m.residual_rows;
        tr->resumed.compression = m.compression;
        m.residuals = NULL, m.compression = NULL;
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

int mn_trainer_save_checkpoint(trainer *tr, long long step, long long epoch) {
  mn_err err;
  int rc = 0;
  mn_watchdog_phase(MN_PHASE_CHECKPOINT, step - 1);
  /* every rank's error-feedback residuals go into the file: rank 0 gathers them (one row per
   * rank, nparams floats each; only while the checkpoint is written) */
  float *residuals = NULL;
  if (tr->compressing) {
    const size_t n = tr->comp.n;
    if (n > INT_MAX) /* an MPI count */
      rc = mn_fail(&err,
                   "checkpoint at step %lld: %zu gradient residuals per rank are more than "
                   "one MPI_Gather carries",
                   step, n);
    else if (tr->w.rank == 0 && !(residuals = malloc((size_t)tr->w.size * n * sizeof(float))))
      rc = mn_fail(&err,
                   "checkpoint at step %lld: out of memory for the %d ranks' gradient "
                   "residuals (earlier checkpoints are intact)",
                   step, tr->w.size);
    if (mn_world_agree(&tr->w, rc, &err) != 0) return -1;
    MPI_Gather(tr->comp.residual, (int)n, MPI_FLOAT, residuals, (int)n, MPI_FLOAT, 0, tr->w.comm);
  }
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
                         .grad_overlap = tr->sync.overlap,
                         .input_a = tr->src.a,
                         .input_b = tr->src.b,
                         .input_len = tr->src.row_len,
                         .layout = (char *)mn_layout_names[tr->src.layout],
                         .target_mean = tr->src.target_mean,
                         .target_std = tr->src.target_std,
                         .ntargets = tr->src.target_mean ? tr->src.info.classes : 0,
                         .residuals = residuals,
                         .residual_rows = tr->w.size,
                         .compression = (char *)mn_compress_names[tr->comp.kind]};
    /* the checkpoint's image takes their place; between steps the gradients are dead (the
     * next backward replaces them; reproducible mode's buffers are its own: left alone) */
    mn_net_release_buffers(&tr->net, !tr->s.reproducible);
    rc = mn_checkpoint_save(path, &tr->net, &tr->s.opt, &meta, &err);
    if (rc == 0) rc = mn_run_dir_commit(tr->s.run_dir, step, (int)tr->s.keep, &err);
    if (rc != 0)
      mn_fail_prefix(&err, "checkpoint at step %lld (earlier checkpoints are intact)", step);
  }
  free(residuals);
  return mn_world_agree(&tr->w, rc, &err);
}
