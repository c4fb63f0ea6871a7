/* checkpoint.h: self-describing HDF5 checkpoints (README "Files").
 *
 * /params/<NN>_<type>/<tensor>, /state/<NN>_<type>/<tensor> (batch norm running statistics)
 * and /optimizer/<NN>_<type>/<tensor>_<momentum|adam_m|adam_v> hold float32 arrays with their
 * real shapes, chunked with Fletcher32 so corruption is caught on read;
 * /input/a, /input/b (and target_mean, target_std) the input transformation (format 2);
 * /compression/residuals, when the run compressed its gradients, each rank's rounding
 * residuals (mpi/compress.h);
 * root attributes say what wrote the file, the step and epoch, the seed, the world size and
 * the full effective config; two content hashes (parameters + state + attributes, and the
 * optimizer buffers) are checked after loading. Saving writes PATH.tmp, fsyncs and renames,
 * so a job killed mid-write, or a full disk, leaves older files intact. */
#ifndef MN_CHECKPOINT_H
#define MN_CHECKPOINT_H

#include <stdint.h>

#include "net.h"
#include "optim.h"

/* 2 adds /input: the input transformation the run trained with (version 1 files still load,
 * without it) */
#define MN_CHECKPOINT_FORMAT 2

typedef struct {
  long long step;  /* optimizer steps completed */
  long long epoch; /* epochs completed */
  long long seed;
  long long world_size;
  long long bucket_floats; /* gradient bucket size the run used (0: unknown) */
  long long grad_overlap;  /* whether its buckets overlapped backward */
  char *config_text;       /* owned, on load */
  char *data_path;         /* owned, on load */
  /* /input (format_version 2): what a row of data became before the first layer, so that
   * eval and predict see what training saw: value = raw * input_a[j] + input_b[j] (input_len
   * values, the model's order), and, for standardised targets, t' = (t - target_mean) /
   * target_std (ntargets each, or NULL). Borrowed on save, owned on load; NULL: absent. */
  float *input_a, *input_b;
  size_t input_len;
  float *target_mean, *target_std;
  int ntargets;
  char *layout; /* the [data] layout the run resolved ("nhwc", ...), owned on load */
  /* /compression/residuals (runs with [train] grad_compression): every rank's error-feedback
   * residuals, residual_rows rows (row r: rank r) of nparams floats, and the compression they
   * belong to ("bf16", "fp16"). Borrowed on save, owned on load; NULL: absent. */
  float *residuals;
  long long residual_rows;
  char *compression;
} mn_ckpt_meta;

/* opt may be NULL (no optimizer state saved). The parameters' and the optimizer buffers'
 * pages are lent to the file's in-memory image while it is built (so that saving does not
 * add their size to the process's memory) and read back, checked, before it returns; should
 * that ever fail, it says so and the training state is lost (the caller stops). */
int mn_checkpoint_save(const char *path, mn_net *net, mn_optimizer *opt, const mn_ckpt_meta *meta,
                       mn_err *err);
/* Loads parameters and state (and the optimizer's buffers, if opt != NULL) into a network
 * built from the same config; names and shapes must match. Fills meta (free with
 * mn_ckpt_meta_free). */
int mn_checkpoint_load(const char *path, mn_net *net, mn_optimizer *opt, mn_ckpt_meta *meta,
                       mn_err *err);
/* Reads only the attributes. */
int mn_checkpoint_read_meta(const char *path, mn_ckpt_meta *meta, mn_err *err);
void mn_ckpt_meta_free(mn_ckpt_meta *meta);

#endif
