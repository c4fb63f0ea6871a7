/* ckpt_job.c: a checkpoint's model and data read as its run read them (ckpt_job.h). */
#include "ckpt_job.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint.h"

/* Rank 0 reads the config stored in the checkpoint; every rank gets the text, or NULL (then
 * rank 0's err says why, for the caller's mn_world_agree). */
static char *read_config_attr(const mn_world *w, const char *path, mn_err *err) {
  mn_ckpt_meta meta = {0};
  char *text = NULL;
  if (w->rank == 0) {
    if (mn_checkpoint_read_meta(path, &meta, err) != 0)
      ;
    else if (!meta.config_text || !meta.config_text[0])
      mn_fail(err, "%s: checkpoint holds no config", path);
    else
      text = meta.config_text, meta.config_text = NULL;
    mn_ckpt_meta_free(&meta);
  }
  return mn_world_bcast_text(w, text);
}

static int open_rows(mn_ckpt_job *j, const mn_ckpt_job_opts *o, mn_err *err) {
  const mn_settings *s = &j->s;
  const bool test = o->rows == MN_ROWS_TEST;
  mn_source_spec spec = test ? mn_job_test_spec(s) : mn_job_train_spec(s);
  spec.path = o->data;
  if (o->x) spec.x = o->x;
  if (o->y) spec.y = o->y;
  if (o->rows == MN_ROWS_X_ONLY) spec.y = NULL;
  if (o->layout >= 0) spec.layout = (mn_layout)o->layout;
  /* the run held its test rows out of its training files: the same rows of DATA */
  const bool holdout = s->test_fraction > 0.0 && o->rows != MN_ROWS_X_ONLY && !o->x;
  if (holdout) {
    spec.x = o->x ? o->x : s->data_x;
    spec.y = o->y ? o->y : s->data_y;
  }
  if (mn_source_open(&j->src, &spec, err) != 0) return -1;
  j->has_src = true;
  if (!holdout) return 0;
  mn_source all = j->src, train, held;
  int rc = mn_source_holdout(&all, s->test_fraction, (uint64_t)s->split_seed, &train, &held, err);
  mn_source_free(&all);
  j->has_src = rc == 0;
  if (rc != 0) return -1;
  j->src = test ? held : train;
  mn_source_free(test ? &train : &held);
  return 0;
}

int mn_ckpt_job_open(mn_ckpt_job *j, const mn_world *w, const char *ckpt, const mn_ckpt_job_opts *o,
                     mn_err *err) {
  memset(j, 0, sizeof *j);
  char *text = read_config_attr(w, ckpt, err);
  if (!text) return w->rank == 0 ? -1 : mn_fail(err, "%s: no config (rank 0 says why)", ckpt);
  int rc = mn_job_parse(&j->cfg, ckpt, text, NULL, 0, err);
  free(text);
  if (rc == 0) rc = mn_job_settings(&j->cfg, &j->s, err);
  if (rc == 0) rc = open_rows(j, o, err);
  if (rc == 0) {
    mn_split_info info = j->src.info;
    if (o->rows == MN_ROWS_X_ONLY) { /* no y: the model's own output width */
      info.has_labels = j->s.loss == MN_LOSS_CROSS_ENTROPY;
      info.classes = 0;
    }
    rc = mn_job_model(&j->cfg, &j->s, &info, o->batch, &j->net, NULL, err);
    /* forward passes only: each output's buffer is reused once its readers are done */
    if (rc == 0) rc = mn_net_plan_forward_only(&j->net, err);
  }
  if (rc == 0) {
    mn_ckpt_meta meta = {0};
    rc = mn_checkpoint_load(ckpt, &j->net, NULL, &meta, err);
    /* the input transformation the run trained with (older checkpoints: the files') */
    if (rc == 0 && meta.input_a)
      rc = mn_source_set_input(&j->src, meta.input_a, meta.input_b, meta.input_len,
                               meta.target_mean, meta.target_std, meta.ntargets, err);
    if (rc == 0 && meta.target_mean) { /* predictions go back into the targets' units */
      j->ntargets = meta.ntargets;
      j->target_mean = meta.target_mean, j->target_std = meta.target_std;
      meta.target_mean = meta.target_std = NULL;
    }
    j->net.target_std = j->src.target_std;
    mn_ckpt_meta_free(&meta); /* (load frees it when it fails) */
  }
  return rc;
}

void mn_ckpt_job_close(mn_ckpt_job *j) {
  mn_net_destroy(&j->net);
  free(j->target_mean), free(j->target_std);
  if (j->has_src) mn_source_free(&j->src);
  mn_config_free(&j->cfg);
  memset(j, 0, sizeof *j);
}

char *mn_ckpt_job_join(int n, char **paths) {
  size_t len = 1;
  for (int i = 0; i < n; i++) len += strlen(paths[i]) + 1;
  char *out = malloc(len), *at = out;
  for (int i = 0; out && i < n; i++) at += sprintf(at, "%s%s", i ? "," : "", paths[i]);
  if (out && n == 0) *out = 0;
  return out;
}
