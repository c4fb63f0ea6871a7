/* ckpt_job.h: a checkpoint's model, and data read as the checkpoint's run read it: what
 * `mpinet eval` and `mpinet predict` share.
 *
 * The model is rebuilt from the config stored in the checkpoint. The data's dataset names,
 * layout and normalisation default to the run's: x and y (or test_x and test_y), layout, and
 * the input transformation stored in the checkpoint (/input, format 2; the files'
 * attributes for older checkpoints), so a prediction sees the values training saw. When the
 * run held out a test_fraction, `test` rows of DATA are the same held-out rows. */
#ifndef MN_CKPT_JOB_H
#define MN_CKPT_JOB_H

#include "job.h"
#include "world.h"

typedef enum { MN_ROWS_TEST, MN_ROWS_TRAIN, MN_ROWS_X_ONLY } mn_rows_kind;

typedef struct {
  const char *data;  /* DATA: files, globs, comma lists (as [data] path) */
  mn_rows_kind rows; /* which rows (X_ONLY: no y, predict) */
  const char *x, *y; /* dataset names, NULL: the run's */
  int layout;        /* -1: the run's */
  int batch;         /* rows per forward pass */
} mn_ckpt_job_opts;

typedef struct {
  mn_config cfg;
  mn_settings s;
  mn_net net;
  mn_source src;
  bool has_src;
  float *target_mean, *target_std; /* the run standardised its targets (ntargets; or NULL) */
  int ntargets;
} mn_ckpt_job;

/* Collective (the config is broadcast). Returns this rank's verdict: the caller agrees on it
 * with mn_world_agree, which prints the message. */
int mn_ckpt_job_open(mn_ckpt_job *j, const mn_world *w, const char *ckpt, const mn_ckpt_job_opts *o,
                     mn_err *err);
void mn_ckpt_job_close(mn_ckpt_job *j);
/* The DATA arguments (files, globs, comma lists; a shell-expanded glob can be thousands) as
 * one comma-separated [data] path: malloc'ed, NULL when out of memory. */
char *mn_ckpt_job_join(int n, char **paths);

#endif
