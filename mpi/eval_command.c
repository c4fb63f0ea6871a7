/* eval_command.c: `mpinet eval CHECKPOINT.h5 DATA.h5`: the test-split accuracy and loss of a
 * checkpoint, computed by all ranks (each a fixed chunk-aligned part, see evaluate.h). */
#define _GNU_SOURCE
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint.h"
#include "evaluate.h"
#include "h5util.h"
#include "job.h"
#include "train.h"
#include "world.h"

static void usage(FILE *out) {
  fprintf(
      out,
      "usage: [mpirun -np N] mpinet eval CHECKPOINT.h5 DATA.h5 [--batch E] [--split test|train]\n"
      "Evaluates a checkpoint on DATA's /test split (or /train). The model is rebuilt from the "
      "config\n"
      "stored in the checkpoint. Every test sample is counted exactly once at any N.\n");
}

/* Rank 0 reads the config stored in the checkpoint; every rank gets the text. */
static char *read_config_attr(const mn_world *w, const char *path) {
  mn_ckpt_meta meta = {0};
  mn_err err;
  char *text = NULL;
  if (w->rank == 0) {
    if (mn_checkpoint_read_meta(path, &meta, &err) != 0)
      fprintf(stderr, "mpinet: error: %s\n", err.msg);
    else if (!meta.config_text || !meta.config_text[0])
      fprintf(stderr, "mpinet: error: %s: checkpoint holds no config\n", path);
    else
      text = meta.config_text, meta.config_text = NULL;
    mn_ckpt_meta_free(&meta);
  }
  return mn_world_bcast_text(w, text);
}

int mn_eval_main(int argc, char **argv) {
  long batch = 128;
  const char *split = "test";
  static const struct option opts[] = {{"batch", required_argument, 0, 'b'},
                                       {"split", required_argument, 0, 's'},
                                       {"help", no_argument, 0, 'h'},
                                       {0, 0, 0, 0}};
  int c;
  optind = 1;
  while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    if (c == 'h') {
      usage(stdout);
      return 0;
    }
    if (c == 's' && (strcmp(optarg, "train") == 0 || strcmp(optarg, "test") == 0)) {
      split = optarg;
      continue;
    }
    if (c != 'b' || (batch = atol(optarg)) < 1 || batch > 4096) {
      usage(stderr);
      return 2;
    }
  }
  if (argc - optind != 2) {
    fprintf(stderr, "mpinet: error: eval: expected CHECKPOINT.h5 and DATA.h5\n");
    usage(stderr);
    return 2;
  }
  const char *ckpt = argv[optind], *data = argv[optind + 1];
  mn_world w;
  mn_world_init(&argc, &argv, &w);
  mn_h5_quiet();
  mn_err err;
  mn_config cfg = {0};
  mn_settings s;
  mn_net net = {0};
  mn_eval_set test = {0};
  mn_source src = {0};
  float *x = NULL, *t = NULL;
  int32_t *y = NULL;
  int rc = -1;
  char *text = read_config_attr(&w, ckpt);
  if (!text) goto out;
  rc = mn_job_parse(&cfg, ckpt, text, NULL, 0, &err);
  free(text);
  if (rc == 0) rc = mn_job_settings(&cfg, &s, &err);
  if (rc == 0) {
    mn_source_spec spec = strcmp(split, "test") == 0 ? mn_job_test_spec(&s) : mn_job_train_spec(&s);
    spec.path = data;
    rc = mn_source_open(&src, &spec, &err);
  }
  const mn_split_info info = src.info;
  if (rc == 0) rc = mn_job_model(&cfg, &s, &info, (int)batch, &net, &err);
  if (rc == 0) {
    mn_ckpt_meta meta;
    rc = mn_checkpoint_load(ckpt, &net, NULL, &meta, &err);
    if (rc == 0) mn_ckpt_meta_free(&meta);
  }
  if (rc == 0) rc = mn_eval_open(&test, &src, (int)batch, &w, &err);
  if (rc == 0) {
    x = mn_alloc((size_t)batch * mn_shape_count(info.shape), sizeof(float), "batch", &err);
    y = mn_alloc((size_t)batch, sizeof(int32_t), "batch", &err);
    t = mn_alloc((size_t)batch * info.classes, sizeof(float), "batch", &err);
    rc = x && y && t ? 0 : -1;
  }
  if (mn_world_agree(&w, rc, &err) != 0) {
    rc = -1;
    goto out;
  }
  mn_eval_sums local, sum;
  rc = mn_eval_local(&net, &test, (int)batch, x, y, t, &local, NULL, &err);
  if (mn_world_agree(&w, rc, &err) != 0) {
    rc = -1;
    goto out;
  }
  MPI_Allreduce(&local, &sum, 3, MPI_DOUBLE, MPI_SUM, w.comm);
  if (w.rank == 0) {
    if (info.has_labels)
      printf("%s on %s %s: accuracy %.4f (correct %.0f of %.0f), loss %.6f, %d rank%s\n", ckpt,
             data, src.x, sum.correct / sum.count, sum.correct, sum.count, sum.loss_sum / sum.count,
             w.size, w.size > 1 ? "s" : "");
    else
      printf("%s on %s %s: loss %.6f over %.0f samples, %d rank%s\n", ckpt, data, src.x,
             sum.loss_sum / sum.count, sum.count, w.size, w.size > 1 ? "s" : "");
  }
out:
  free(x), free(y), free(t);
  mn_eval_close(&test);
  mn_source_free(&src);
  mn_net_destroy(&net);
  mn_config_free(&cfg);
  mn_world_finalize();
  return rc == 0 ? 0 : 1;
}
