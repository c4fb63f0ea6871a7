/* predict.c: a program outside mpinet's build that uses the installed library: it rebuilds
 * the network a checkpoint was trained with (from the config stored in it), loads the
 * parameters and classifies a dataset's test split in one process.
 *   predict CKPT.h5 DATA.h5   -> "correct K of N"
 * tests/package.sh builds it with find_package(mpinet) and with pkg-config and checks it
 * against `mpinet eval`. */
#include <stdio.h>
#include <stdlib.h>

#include <mpinet/checkpoint.h>
#include <mpinet/config.h>
#include <mpinet/dataset.h>
#include <mpinet/net.h>
#include <mpinet/version.h>

static int fail(const mn_err *err) {
  fprintf(stderr, "predict: %s\n", err->msg);
  return 1;
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: predict CKPT.h5 DATA.h5   (mpinet %s)\n", MN_VERSION);
    return 2;
  }
  mn_err err;
  mn_ckpt_meta meta = {0};
  if (mn_checkpoint_read_meta(argv[1], &meta, &err) != 0) return fail(&err);
  mn_config cfg;
  if (mn_config_parse(&cfg, argv[1], meta.config_text, &err) != 0) return fail(&err);
  int loss = 0;
  mn_cfg_section *train = mn_config_section(&cfg, "train");
  if (train && mn_cfg_choice(train, "loss", mn_loss_names, 0, &loss, &err) != 0) return fail(&err);

  mn_source src;
  mn_split test;
  if (mn_source_open_split(&src, argv[2], "test", &err) != 0) return fail(&err);
  if (mn_split_load(&test, &src, 0, (size_t)-1, &err) != 0) return fail(&err);
  enum { BATCH = 100 };
  mn_net net;
  if (mn_net_create(&net, &cfg, test.info.shape, test.info.classes, (mn_loss_kind)loss, BATCH,
                    &err) != 0)
    return fail(&err);
  mn_ckpt_meta loaded = {0};
  if (mn_checkpoint_load(argv[1], &net, NULL, &loaded, &err) != 0) return fail(&err);

  float *x = malloc((size_t)BATCH * test.row_len * sizeof *x);
  int32_t labels[BATCH];
  uint32_t rows[BATCH];
  mn_pass pass = {.training = false};
  long correct = 0;
  for (size_t at = 0; at < test.n; at += BATCH) {
    int count = test.n - at < BATCH ? (int)(test.n - at) : BATCH;
    for (int i = 0; i < count; i++) rows[i] = (uint32_t)(at + (size_t)i);
    mn_split_gather(&test, rows, count, x, labels, NULL);
    const float *out = mn_net_forward(&net, &pass, x, count);
    for (int i = 0; i < count; i++) {
      int best = 0;
      for (int k = 1; k < net.outputs; k++)
        if (out[(size_t)i * net.outputs + k] > out[(size_t)i * net.outputs + best]) best = k;
      correct += best == labels[i];
    }
  }
  printf("correct %ld of %zu (step %lld)\n", correct, test.n, loaded.step);
  free(x);
  mn_net_destroy(&net);
  mn_split_free(&test);
  mn_source_free(&src);
  mn_config_free(&cfg);
  mn_ckpt_meta_free(&meta);
  mn_ckpt_meta_free(&loaded);
  return 0;
}
