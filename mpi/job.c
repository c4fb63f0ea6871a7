/* job.c: settings and model construction from the broadcast config text. */
#include "job.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compress.h"

static const char *const known_sections[] = {"data",  "train",   "checkpoint",
                                             "layer", "augment", NULL};

int mn_job_parse(mn_config *cfg, const char *path, const char *text, char **sets, int nsets,
                 mn_err *err) {
  if (mn_config_parse(cfg, path, text, err) != 0) return -1;
  for (int i = 0; i < nsets; i++)
    if (mn_config_set(cfg, sets[i], err) != 0) return -1;
  return 0;
}

/* "file:12: [train] sync_every: 4: reproducible mode ...": an option whose bits depend on the
 * world size, refused in the mode that promises the same bits at every world size. */
static int refuse_in_reproducible(mn_cfg_section *train, const char *key, const char *why,
                                  mn_err *err) {
  char where[700];
  mn_cfg_entry *e = mn_cfg_find(train, key);
  mn_cfg_where(train, e, where, sizeof where);
  return mn_fail(err,
                 "%s: %s: reproducible mode %s, so the bits would depend on the world size (use "
                 "one or the other)",
                 where, e->value, why);
}

int mn_job_settings(mn_config *cfg, mn_settings *s, mn_err *err) {
  memset(s, 0, sizeof *s);
  mn_cfg_section *data = mn_config_section(cfg, "data");
  mn_cfg_section *train = mn_config_section(cfg, "train");
  mn_cfg_section *ckpt = mn_config_section(cfg, "checkpoint");
  static const char *const progress_names[] = {"auto", "bar", "lines", NULL};
  int shuffle, loss, progress;
  if (!mn_cfg_has(data, "path"))
    return mn_fail(err, "%s: [data] path is required (the HDF5 dataset to train on)", cfg->path);
  if (mn_cfg_string(data, "path", NULL, &s->data_path, err) != 0 ||
      mn_cfg_choice(data, "shuffle", mn_shuffle_names, MN_SHUFFLE_GLOBAL, &shuffle, err) != 0 ||
      mn_cfg_int(train, "epochs", 10, 1, 1000000, &s->epochs, err) != 0 ||
      mn_cfg_int(train, "batch", 128, 1, 1 << 24, &s->batch, err) != 0 ||
      mn_cfg_int(train, "max_steps", 0, 0, 1L << 40, &s->max_steps, err) != 0 ||
      mn_cfg_int(train, "eval_batch", 128, 1, 4096, &s->eval_batch, err) != 0 ||
      mn_cfg_int(train, "seed", 1, 0, 1L << 62, &s->seed, err) != 0 ||
      mn_cfg_int(train, "progress_seconds", 30, 1, 1000000, &s->progress_s, err) != 0 ||
      mn_cfg_choice(train, "loss", mn_loss_names, MN_LOSS_CROSS_ENTROPY, &loss, err) != 0 ||
      mn_cfg_choice(train, "progress", progress_names, MN_PROGRESS_AUTO, &progress, err) != 0 ||
      mn_optim_configure(&s->opt, train, err) != 0 ||
      mn_cfg_string(ckpt, "dir", "runs/default", &s->run_dir, err) != 0 ||
      mn_cfg_int(ckpt, "every_epochs", 1, 0, 1000000, &s->every_epochs, err) != 0 ||
      mn_cfg_int(train, "eval_every_steps", 0, 0, 1L << 40, &s->eval_every_steps, err) != 0 ||
      mn_cfg_int(ckpt, "keep", 3, 1, 1000000, &s->keep, err) != 0)
    return -1;
  const char *bucket;
  static const char *const prefetch_names[] = {"false", "true", "auto", NULL};
  static const char *const nonfinite_names[] = {"stop", "skip", NULL};
  static const char *const allreduce_names[] = {"auto", "node", "mpi", NULL};
  int nonfinite, allreduce;
  if (mn_cfg_choice(data, "prefetch", prefetch_names, 2, &s->prefetch, err) != 0 ||
      mn_cfg_double(data, "memory_mb", 0.0, 0.0, 1e9, &s->memory_mb, err) != 0 ||
      mn_cfg_choice(train, "allreduce", allreduce_names, 0, &allreduce, err) != 0 ||
      mn_cfg_bool(train, "overlap", true, &s->overlap, err) != 0 ||
      mn_cfg_string(train, "bucket_mb", "auto", &bucket, err) != 0 ||
      mn_cfg_int(train, "threads", 0, 0, 1024, &s->threads, err) != 0 ||
      mn_cfg_bool(train, "check_allocations", false, &s->check_allocations, err) != 0 ||
      mn_cfg_double(train, "watchdog_seconds", 300.0, 0.0, 1e7, &s->watchdog_s, err) != 0 ||
      mn_cfg_int(train, "timeline_steps", 0, 0, 100000, &s->timeline_steps, err) != 0 ||
      mn_cfg_bool(train, "check_gradients", true, &s->check_gradients, err) != 0 ||
      mn_cfg_choice(train, "on_nonfinite", nonfinite_names, 0, &nonfinite, err) != 0 ||
      mn_cfg_bool(train, "reproducible", false, &s->reproducible, err) != 0 ||
      mn_cfg_int(train, "virtual_shards", 8, 1, 4096, &s->virtual_shards, err) != 0 ||
      mn_cfg_choice(train, "grad_compression", mn_compress_names, MN_COMPRESS_NONE,
                    &s->grad_compression, err) != 0 ||
      mn_cfg_int(train, "sync_every", 1, 1, 1000000, &s->sync_every, err) != 0 ||
      mn_cfg_double(train, "sync_warmup_epochs", 0.0, 0.0, 1e6, &s->sync_warmup_epochs, err) != 0)
    return -1;
  if (s->reproducible && s->sync_every > 1)
    return refuse_in_reproducible(train, "sync_every",
                                  "sums one global batch's gradients in a fixed tree at every "
                                  "step; local SGD lets each rank step on its own rows",
                                  err);
  if (s->reproducible && s->grad_compression != MN_COMPRESS_NONE)
    return refuse_in_reproducible(train, "grad_compression",
                                  "sums float32 gradients in a fixed tree; 16-bit sums round "
                                  "each partial sum",
                                  err);
  if ((s->virtual_shards & (s->virtual_shards - 1)) != 0) {
    char where[700];
    mn_cfg_where(train, mn_cfg_find(train, "virtual_shards"), where, sizeof where);
    return mn_fail(err,
                   "%s: %ld is not a power of two (the micro-batches are summed as a balanced "
                   "binary tree)",
                   where, s->virtual_shards);
  }
  if (strcmp(bucket, "auto") == 0) {
    s->bucket_mb = 0.0;
  } else {
    char *end;
    s->bucket_mb = strtod(bucket, &end);
    if (*end != '\0' || !(s->bucket_mb >= 0.004) || s->bucket_mb > 4096) {
      char where[700];
      mn_cfg_where(train, mn_cfg_find(train, "bucket_mb"), where, sizeof where);
      return mn_fail(err, "%s: '%s' is not auto or a size in MB (0.004 to 4096)", where, bucket);
    }
  }
  int layout, normalise;
  if (mn_cfg_string(data, "x", "/train/x", &s->data_x, err) != 0 ||
      mn_cfg_string(data, "y", "/train/y", &s->data_y, err) != 0 ||
      mn_cfg_string(data, "test_path", s->data_path, &s->test_path, err) != 0 ||
      mn_cfg_string(data, "test_x", "/test/x", &s->test_x, err) != 0 ||
      mn_cfg_string(data, "test_y", "/test/y", &s->test_y, err) != 0 ||
      mn_cfg_double(data, "test_fraction", 0.0, 0.0, 1.0, &s->test_fraction, err) != 0 ||
      mn_cfg_int(data, "split_seed", 12345, 0, 1L << 62, &s->split_seed, err) != 0 ||
      mn_cfg_choice(data, "layout", mn_layout_names, MN_LAYOUT_AUTO, &layout, err) != 0 ||
      mn_cfg_choice(data, "normalise", mn_normalise_names, MN_NORMALISE_FILE, &normalise, err) !=
          0 ||
      mn_cfg_int(data, "classes", 0, 0, 1000000, &s->classes, err) != 0 ||
      mn_cfg_int(data, "max_open_files", 16, 1, 100000, &s->max_open_files, err) != 0 ||
      mn_cfg_bool(data, "standardise_targets", false, &s->standardise_targets, err) != 0 ||
      mn_cfg_bool(data, "share_memory", true, &s->share_memory, err) != 0)
    return -1;
  s->test_explicit =
      mn_cfg_has(data, "test_path") || mn_cfg_has(data, "test_x") || mn_cfg_has(data, "test_y");
  if (s->test_fraction > 0.0 && (s->test_fraction >= 1.0 || s->test_explicit)) {
    char where[700];
    mn_cfg_where(data, mn_cfg_find(data, "test_fraction"), where, sizeof where);
    return mn_fail(err, "%s: %s", where,
                   s->test_fraction >= 1.0
                       ? "must be below 1 (the fraction of the training rows held out for testing)"
                       : "holds test rows out of the training rows: it cannot be combined with "
                         "test_path, test_x or test_y");
  }
  if (s->classes == 1) {
    char where[700];
    mn_cfg_where(data, mn_cfg_find(data, "classes"), where, sizeof where);
    return mn_fail(err, "%s: a classifier needs at least 2 classes", where);
  }
  s->layout = (mn_layout)layout;
  s->normalise = (mn_normalise)normalise;
#ifdef MPINET_SIMULATE
  /* mpinet-sim: what SMPI cannot simulate is off whatever the config says (train_setup.c
   * says so at start-up): the node's shared-memory sum and shared rows (SMPI's shared windows
   * are not the node's memory), threads that run beside the ranks (prefetch, watchdog), and
   * non-blocking buckets (SimGrid 3.32's MPI_Iallreduce gives wrong sums in place), with
   * their start-up timing. Gradients go in blocking MPI allreduces. */
  allreduce = MN_ALLREDUCE_MPI;
  s->overlap = false;
  s->prefetch = 0;
  s->watchdog_s = 0.0;
  s->share_memory = false;
  if (s->bucket_mb == 0.0) s->bucket_mb = 4096; /* one bucket: no tuning */
#endif
  s->skip_nonfinite = nonfinite == 1;
  s->allreduce = (mn_allreduce_mode)allreduce;
  s->shuffle = (mn_shuffle_mode)shuffle;
  s->loss = (mn_loss_kind)loss;
  s->progress = (mn_progress)progress;
  return 0;
}

mn_source_spec mn_job_train_spec(const mn_settings *s) {
  return (mn_source_spec){.path = s->data_path,
                          .x = s->data_x,
                          .y = s->data_y,
                          .layout = s->layout,
                          .normalise = s->normalise,
                          .classes = (int)s->classes,
                          .max_open = (int)s->max_open_files};
}

mn_source_spec mn_job_test_spec(const mn_settings *s) {
  mn_source_spec spec = mn_job_train_spec(s);
  spec.path = s->test_path;
  spec.x = s->test_x;
  spec.y = s->test_y;
  return spec;
}

int mn_job_model(mn_config *cfg, const mn_settings *s, const mn_split_info *info, int max_batch,
                 mn_net *net, mn_augment *aug, mn_err *err) {
  mn_augment unused;
  if (mn_augment_parse(aug ? aug : &unused, mn_config_section(cfg, "augment"), info->shape, err) !=
      0)
    return -1;
  if (s->loss == MN_LOSS_CROSS_ENTROPY && !info->has_labels) {
    mn_cfg_section *train = mn_config_section(cfg, "train");
    char where[700];
    mn_cfg_entry *e = train ? mn_cfg_find(train, "loss") : NULL;
    if (e)
      mn_cfg_where(train, e, where, sizeof where);
    else
      snprintf(where, sizeof where, "%s: [train] loss (default cross_entropy)", cfg->path);
    return mn_fail(err,
                   "%s: cross_entropy needs integer class labels but %s: %s holds float "
                   "targets; use loss = mse",
                   where, s->data_path, s->data_y);
  }
  if (mn_net_create(net, cfg, info->shape, info->classes, s->loss, max_batch, err) != 0) return -1;
  if (mn_config_check_unused(cfg, known_sections, err) != 0) {
    mn_net_destroy(net);
    return -1;
  }
  return 0;
}
