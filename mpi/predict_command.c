#define _GNU_SOURCE
/* predict_command.c: `mpinet predict CHECKPOINT.h5 DATA... -o OUT`: a trained model's outputs
 * for new rows, in input order. Every rank computes a fixed chunk-aligned part (as eval
 * does, evaluate.h), rank 0 gathers the parts and writes the file atomically (a temporary
 * file renamed over OUT), so a failed run leaves no half-written predictions. */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ckpt_job.h"
#include "evaluate.h"
#include "fileutil.h"
#include "h5util.h"
#include "train.h"
#include "world.h"

static void usage(FILE *out) {
  fprintf(out,
          "usage: [mpirun -np N] mpinet predict CHECKPOINT.h5 DATA... -o OUT [--x DATASET]\n"
          "                                     [--layout L] [--format h5|csv] [--batch E]\n"
          "Runs a checkpoint's model on the rows of DATA (files, globs or a comma list, as\n"
          "[data] path). The dataset name (--x), the layout and the normalisation default to\n"
          "what the checkpoint's run used. Writes, in input order:\n"
          "  h5:  /predictions float32 (n, outputs): class probabilities (binary cross-entropy:\n"
          "       each output's probability), or regression outputs in the targets' units;\n"
          "       and for classifiers /classes int32 (n)\n"
          "  csv: a header (output_0, ... or the data's class_names; then class for\n"
          "       classifiers), then one row per sample\n"
          "The format defaults to OUT's extension (.csv: csv, else h5).\n");
}

/* Softmax of each row, in place (classifiers trained on logits report probabilities). */
static void softmax_rows(float *o, size_t n, int k) {
  for (size_t i = 0; i < n; i++) {
    float *r = o + i * (size_t)k, max = r[0];
    for (int j = 1; j < k; j++) max = r[j] > max ? r[j] : max;
    double sum = 0.0;
    for (int j = 0; j < k; j++) sum += exp((double)(r[j] - max));
    for (int j = 0; j < k; j++) r[j] = (float)(exp((double)(r[j] - max)) / sum);
  }
}

/* This rank's rows [begin, end) through the model: outputs (rows, k). */
static int compute(mn_ckpt_job *j, size_t begin, size_t end, int batch, float *out, mn_err *err) {
  const mn_source *src = &j->src;
  const int k = j->net.outputs;
  mn_split win;
  if (mn_split_alloc(&win, src, (size_t)batch, err) != 0) return -1;
  float *x = mn_alloc((size_t)batch * src->row_len, sizeof *x, "batch", err);
  uint32_t *rows = mn_alloc((size_t)batch, sizeof *rows, "batch", err);
  mn_source_reader *r = x && rows ? mn_source_reader_open(src, "prediction", err) : NULL;
  int rc = r ? 0 : -1;
  for (int i = 0; i < batch; i++) rows[i] = (uint32_t)i;
  const mn_pass pass = {.training = false};
  for (size_t at = begin; rc == 0 && at < end; at += (size_t)batch) {
    const int count = (int)(end - at < (size_t)batch ? end - at : (size_t)batch);
    rc = mn_source_read(r, at, (size_t)count, win.x, NULL, NULL, err);
    if (rc != 0) break;
    mn_split_gather(&win, rows, count, x, NULL, NULL);
    const float *o = mn_net_forward(&j->net, &pass, x, count);
    memcpy(out + (at - begin) * (size_t)k, o, (size_t)count * (size_t)k * sizeof *out);
  }
  mn_source_reader_close(r);
  mn_split_free(&win);
  free(x), free(rows);
  return rc;
}

/* The data file's class_names attribute ("a,b,c", as mpinet's converters write it), if it
 * names exactly k classes; else NULL. */
static char *class_names(const char *data_file, int k) {
  mn_err ignored;
  hid_t f = mn_h5_open_read(data_file, &ignored);
  if (f < 0) return NULL;
  char *names = mn_h5_read_attr_string(f, "class_names");
  H5Fclose(f);
  int commas = 0;
  for (const char *c = names; c && *c; c++) commas += *c == ',';
  if (names && commas + 1 == k) return names;
  free(names);
  return NULL;
}

static int write_csv(const char *path, const float *p, const int32_t *cls, size_t n, int k,
                     const char *names, mn_err *err) {
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  if (!f) return mn_fail(err, "%s: out of memory", path);
  if (names)
    fprintf(f, "%s", names);
  else
    for (int j = 0; j < k; j++) fprintf(f, "%soutput_%d", j ? "," : "", j);
  fprintf(f, cls ? ",class\n" : "\n");
  for (size_t i = 0; i < n; i++) {
    for (int j = 0; j < k; j++) fprintf(f, j ? ",%.9g" : "%.9g", p[i * (size_t)k + (size_t)j]);
    if (cls) fprintf(f, ",%d", cls[i]);
    fprintf(f, "\n");
  }
  fclose(f);
  const int rc = mn_write_file_atomic(path, text, err);
  free(text);
  return rc;
}

static int write_h5(const char *path, const float *p, const int32_t *cls, size_t n, int k,
                    const char *ckpt, const char *data, const char *names, mn_err *err) {
  char tmp[1100];
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  hid_t f = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  if (f < 0) return mn_fail(err, "%s: cannot create", tmp);
  const size_t dims[2] = {n, (size_t)k};
  int rc = mn_h5_write_array(f, "predictions", H5T_NATIVE_FLOAT, 2, dims, p, false);
  if (cls) rc |= mn_h5_write_array(f, "classes", H5T_NATIVE_INT32, 1, dims, cls, false);
  rc |= mn_h5_write_attr_string(f, "format", "mpinet-predictions") |
        mn_h5_write_attr_string(f, "checkpoint", ckpt) | mn_h5_write_attr_string(f, "data", data);
  if (names) rc |= mn_h5_write_attr_string(f, "class_names", names);
  if (H5Fclose(f) < 0) rc = -1;
  if (rc == 0 && rename(tmp, path) != 0) rc = -1;
  if (rc != 0) {
    unlink(tmp);
    return mn_fail(err, "%s: cannot write the predictions (disk full?)", path);
  }
  return 0;
}

int mn_predict_main(int argc, char **argv) {
  mn_ckpt_job_opts o = {.rows = MN_ROWS_X_ONLY, .layout = -1, .batch = 256};
  const char *out_path = NULL, *format = NULL;
  static const struct option opts[] = {{"output", required_argument, 0, 'o'},
                                       {"x", required_argument, 0, 'x'},
                                       {"layout", required_argument, 0, 'l'},
                                       {"format", required_argument, 0, 'f'},
                                       {"batch", required_argument, 0, 'b'},
                                       {"help", no_argument, 0, 'h'},
                                       {0, 0, 0, 0}};
  int c;
  optind = 1;
  while ((c = getopt_long(argc, argv, "ho:", opts, NULL)) != -1) {
    if (c == 'h') {
      usage(stdout);
      return 0;
    }
    if (c == 'o')
      out_path = optarg;
    else if (c == 'x')
      o.x = optarg;
    else if (c == 'f' && (strcmp(optarg, "h5") == 0 || strcmp(optarg, "csv") == 0))
      format = optarg;
    else if (c == 'l') {
      o.layout = -1;
      for (int i = 0; mn_layout_names[i]; i++)
        if (strcmp(optarg, mn_layout_names[i]) == 0) o.layout = i;
      if (o.layout < 0) {
        fprintf(stderr,
                "mpinet: error: predict: --layout %s is not one of auto, nchw, nhwc, "
                "hw, tf, features\n",
                optarg);
        return 2;
      }
    } else if (c != 'b' || (o.batch = atoi(optarg)) < 1 || o.batch > 4096) {
      usage(stderr);
      return 2;
    }
  }
  if (argc - optind < 2 || !out_path) {
    fprintf(stderr, "mpinet: error: predict: expected CHECKPOINT.h5, DATA and -o OUT\n");
    usage(stderr);
    return 2;
  }
  if (!format) {
    const char *dot = strrchr(out_path, '.');
    format = dot && strcmp(dot, ".csv") == 0 ? "csv" : "h5";
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
  float *mine = NULL, *all = NULL;
  int32_t *cls = NULL;
  int *counts = NULL, *displs = NULL;
  int rc = mn_ckpt_job_open(&j, &w, ckpt, &o, &err);
  const int k = j.net.outputs;
  const size_t n = j.src.info.rows;
  size_t begin = 0, end = 0;
  if (rc == 0) {
    mn_eval_range(n, o.batch, w.rank, w.size, &begin, &end);
    mine = mn_alloc((end - begin) * (size_t)k + 1, sizeof *mine, "predictions", &err);
    rc = mine ? compute(&j, begin, end, o.batch, mine, &err) : -1;
  }
  if (rc == 0 && (size_t)k * n > (size_t)1 << 31)
    rc = mn_fail(&err, "%s: %zu predictions of %d values are too many for one file", data, n, k);
  if (mn_world_agree(&w, rc, &err) != 0) {
    rc = -1;
    goto out;
  }
  /* rank 0 gathers every rank's part, in rank order: the input order */
  const int part = (int)((end - begin) * (size_t)k);
  if (w.rank == 0) {
    counts = malloc((size_t)w.size * sizeof *counts);
    displs = malloc((size_t)w.size * sizeof *displs);
    all = malloc(n * (size_t)k * sizeof *all + 1);
    if (!counts || !displs || !all) mn_world_abort(&w, "out of memory for the predictions");
  }
  MPI_Gather(&part, 1, MPI_INT, counts, 1, MPI_INT, 0, w.comm);
  for (int r = 0; w.rank == 0 && r < w.size; r++) displs[r] = r ? displs[r - 1] + counts[r - 1] : 0;
  MPI_Gatherv(mine, part, MPI_FLOAT, all, counts, displs, MPI_FLOAT, 0, w.comm);
  if (w.rank == 0) {
    const bool classifier = j.s.loss == MN_LOSS_CROSS_ENTROPY;
    if (classifier) {
      if (mn_net_final_act(&j.net) != MN_ACT_SOFTMAX) softmax_rows(all, n, k);
      cls = malloc(n * sizeof *cls + 1);
      if (!cls) mn_world_abort(&w, "out of memory for the predictions");
      for (size_t i = 0; i < n; i++) cls[i] = mn_argmax(all + i * (size_t)k, k);
    } else if (j.s.loss == MN_LOSS_BCE && mn_net_final_act(&j.net) != MN_ACT_SIGMOID) {
      for (size_t i = 0; i < n * (size_t)k; i++) all[i] = 1.0f / (1.0f + expf(-all[i]));
    } else if (j.target_mean) { /* the model learnt standardised targets */
      for (size_t i = 0; i < n; i++)
        for (int c2 = 0; c2 < k && c2 < j.ntargets; c2++)
          all[i * (size_t)k + (size_t)c2] =
              all[i * (size_t)k + (size_t)c2] * j.target_std[c2] + j.target_mean[c2];
    }
    char *names = classifier ? class_names(j.src.files[0].path, k) : NULL;
    rc = strcmp(format, "csv") == 0 ? write_csv(out_path, all, cls, n, k, names, &err)
                                    : write_h5(out_path, all, cls, n, k, ckpt, data, names, &err);
    free(names);
    if (rc == 0)
      printf("predict: %zu rows of %s %s -> %s (%s, %d %s), %d rank%s\n", n, data, j.src.x,
             out_path, format, k, classifier ? "class probabilities and the class" : "outputs",
             w.size, w.size > 1 ? "s" : "");
  }
  if (mn_world_agree(&w, rc, &err) != 0) rc = -1;
out:
  free(mine), free(all), free(cls), free(counts), free(displs);
  mn_ckpt_job_close(&j);
  free(data);
  mn_world_finalize();
  return rc == 0 ? 0 : 1;
}
