/* eval_command.c: `mpinet eval CHECKPOINT.h5 DATA...`: a checkpoint's accuracy and loss on a
 * dataset, per class (classifiers) or per output (regression), computed by all ranks (each a
 * fixed chunk-aligned part, see evaluate.h). */
#define _GNU_SOURCE
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt_job.h"
#include "evaluate.h"
#include "h5util.h"
#include "train.h"
#include "world.h"

static void usage(FILE *out) {
  fprintf(out,
          "usage: [mpirun -np N] mpinet eval CHECKPOINT.h5 DATA... [--split test|train]\n"
          "                                  [--x DATASET] [--y DATASET] [--batch E] [--json]\n"
          "Evaluates a checkpoint on DATA (files, globs or a comma list, as [data] path), read\n"
          "as the checkpoint's run read its data: the same dataset names (test_x/test_y, or x/y\n"
          "with --split train), layout and normalisation; the rows a test_fraction held out when\n"
          "the run held some out. --x/--y name other datasets. Prints the accuracy per class\n"
          "(classifiers) or the loss per output in the targets' units (regression); --json adds\n"
          "one JSON line. Every row is counted exactly once at any N.\n");
}

static void json_list(const double *v, int n, double scale) {
  printf("[");
  for (int i = 0; i < n; i++) printf(i ? ", %.6g" : "%.6g", v[i] * scale);
  printf("]");
}

int mn_eval_main(int argc, char **argv) {
  mn_ckpt_job_opts o = {.rows = MN_ROWS_TEST, .layout = -1, .batch = 128};
  bool json = false;
  static const struct option opts[] = {{"batch", required_argument, 0, 'b'},
                                       {"split", required_argument, 0, 's'},
                                       {"x", required_argument, 0, 'x'},
                                       {"y", required_argument, 0, 'y'},
                                       {"json", no_argument, 0, 'j'},
                                       {"help", no_argument, 0, 'h'},
                                       {0, 0, 0, 0}};
  int c;
  optind = 1;
  while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    if (c == 'h') {
      usage(stdout);
      return 0;
    }
    if (c == 's' && (strcmp(optarg, "train") == 0 || strcmp(optarg, "test") == 0))
      o.rows = strcmp(optarg, "test") == 0 ? MN_ROWS_TEST : MN_ROWS_TRAIN;
    else if (c == 'x')
      o.x = optarg;
    else if (c == 'y')
      o.y = optarg;
    else if (c == 'j')
      json = true;
    else if (c != 'b' || (o.batch = atoi(optarg)) < 1 || o.batch > 4096) {
      usage(stderr);
      return 2;
    }
  }
  if (argc - optind < 2) {
    fprintf(stderr, "mpinet: error: eval: expected CHECKPOINT.h5 and DATA\n");
    usage(stderr);
    return 2;
  }
  const char *ckpt = argv[optind];
  char *data = mn_ckpt_job_join(argc - optind - 1, argv + optind + 1);
  if (!data) {
    fprintf(stderr, "mpinet: error: out of memory\n");
    return 1;
  }
  o.data = data;
  mn_world w;
  mn_world_init(&argc, &argv, &w);
  mn_h5_quiet();
  mn_err err;
  mn_ckpt_job j;
  mn_eval_set test = {0};
  float *x = NULL, *t = NULL;
  int32_t *y = NULL;
  double *detail = NULL;
  int rc = mn_ckpt_job_open(&j, &w, ckpt, &o, &err);
  const mn_split_info info = j.src.info;
  const int k = j.net.outputs;
  if (rc == 0) rc = mn_eval_open(&test, &j.src, o.batch, &w, &err);
  if (rc == 0) {
    x = mn_alloc((size_t)o.batch * mn_shape_count(info.shape), sizeof(float), "batch", &err);
    y = mn_alloc((size_t)o.batch, sizeof(int32_t), "batch", &err);
    t = mn_alloc((size_t)o.batch * (size_t)info.classes, sizeof(float), "batch", &err);
    detail = test.detail = mn_alloc(2 * (size_t)k, sizeof(double), "evaluation", &err);
    rc = x && y && t && detail ? 0 : -1;
  }
  if (mn_world_agree(&w, rc, &err) != 0) {
    rc = -1;
    goto out;
  }
  memset(detail, 0, 2 * (size_t)k * sizeof *detail);
  mn_eval_sums local, sum;
  rc = mn_eval_local(&j.net, &test, o.batch, x, y, t, &local, NULL, &err);
  if (mn_world_agree(&w, rc, &err) != 0) {
    rc = -1;
    goto out;
  }
  MPI_Allreduce(&local, &sum, 3, MPI_DOUBLE, MPI_SUM, w.comm);
  MPI_Allreduce(MPI_IN_PLACE, detail, 2 * k, MPI_DOUBLE, MPI_SUM, w.comm);
  if (w.rank == 0) {
    const double loss = sum.loss_sum / sum.count;
    const char *ranks = w.size > 1 ? "ranks" : "rank";
    if (info.has_labels) {
      printf("%s on %s %s: accuracy %.4f (correct %.0f of %.0f), loss %.6f, %d %s\n", ckpt, data,
             j.src.x, sum.correct / sum.count, sum.correct, sum.count, loss, w.size, ranks);
      printf("per class (rows, accuracy):");
      for (int i = 0; i < k; i++)
        printf(" %d: %.0f %.4f", i, detail[i], detail[i] > 0 ? detail[k + i] / detail[i] : NAN);
      printf("\n");
    } else {
      printf("%s on %s %s: loss %.6f over %.0f samples%s, %d %s\n", ckpt, data, j.src.x, loss,
             sum.count, j.src.target_std ? " (in the targets' units)" : "", w.size, ranks);
      printf("per output (mean squared error):");
      for (int i = 0; i < k; i++) printf(" %d: %.6g", i, detail[i] / sum.count);
      printf("\n");
    }
    char memory[256];
    mn_net_describe_memory(&j.net, memory, sizeof memory);
    printf("%s\n", memory);
    if (json) {
      printf("{\"checkpoint\": \"%s\", \"rows\": %.0f, \"loss\": %.9g, \"world_size\": %d", ckpt,
             sum.count, loss, w.size);
      printf(", \"activation_bytes\": %zu, \"activation_bytes_one_per_layer\": %zu",
             j.net.arena_bytes, j.net.layer_bytes);
      if (info.has_labels) {
        printf(", \"accuracy\": %.9g, \"correct\": %.0f, \"class_rows\": ", sum.correct / sum.count,
               sum.correct);
        json_list(detail, k, 1.0);
        printf(", \"class_correct\": ");
        json_list(detail + k, k, 1.0);
      } else {
        printf(", \"output_mse\": ");
        json_list(detail, k, 1.0 / sum.count);
      }
      printf("}\n");
    }
  }
out:
  free(x), free(y), free(t), free(detail);
  mn_eval_close(&test);
  mn_ckpt_job_close(&j);
  free(data);
  mn_world_finalize();
  return rc == 0 ? 0 : 1;
}
