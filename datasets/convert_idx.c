/* convert_idx.c: `mpinet convert idx`: MNIST-style idx files (gzip or plain) -> HDF5.
 *
 * idx format: big-endian magic 0x0000TTNN (TT = 0x08 for uint8, NN = number of dims), then
 * NN big-endian uint32 dims, then the data. We check the magic, the dims, that images and
 * labels agree on the count, that the file holds exactly that many bytes, and that the labels
 * fit the class count. zlib's gz reader reads plain files unchanged, so both forms work. */
#define _GNU_SOURCE
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "convert.h"
#include "h5_writer.h"

int mn_idx_read(const char *path, int want_dims, mn_idx_file *out, mn_err *err) {
  memset(out, 0, sizeof *out);
  gzFile f = gzopen(path, "rb");
  if (!f) return mn_fail(err, "%s: cannot open", path);
  unsigned char head[4];
  int rc = -1;
  if (gzread(f, head, 4) != 4) {
    mn_fail(err, "%s: too short for an idx header", path);
    goto out;
  }
  if (head[0] != 0 || head[1] != 0 || head[2] != 0x08 || head[3] != want_dims) {
    mn_fail(err, "%s: bad magic %02x%02x%02x%02x (expected 000008%02x: uint8 with %d dims)", path,
            head[0], head[1], head[2], head[3], want_dims, want_dims);
    goto out;
  }
  out->ndims = want_dims;
  size_t total = 1;
  for (int i = 0; i < want_dims; i++) {
    unsigned char d[4];
    if (gzread(f, d, 4) != 4) {
      mn_fail(err, "%s: truncated header", path);
      goto out;
    }
    out->dims[i] = (uint32_t)d[0] << 24 | (uint32_t)d[1] << 16 | (uint32_t)d[2] << 8 | d[3];
    if (out->dims[i] == 0 || mn_mul_size(total, out->dims[i], &total) != 0 ||
        total > ((size_t)1 << 36)) {
      mn_fail(err, "%s: implausible dimension %u", path, out->dims[i]);
      goto out;
    }
  }
  out->size = total;
  /* The buffer grows with the data actually read, up to what the header promises: a header
   * that claims 60 GB in a 20-byte file is reported as truncated, not allocated (found by
   * jobs/fuzz). */
  size_t got = 0, cap = 0;
  while (got < total) {
    if (got == cap) {
      size_t next = cap ? cap * 2 : (size_t)1 << 20;
      if (next > total) next = total;
      uint8_t *grown = realloc(out->data, next);
      if (!grown) {
        mn_fail(err, "%s: out of memory (%zu bytes)", path, next);
        goto out;
      }
      out->data = grown;
      cap = next;
    }
    unsigned chunk = cap - got > (1u << 30) ? (1u << 30) : (unsigned)(cap - got);
    int r = gzread(f, out->data + got, chunk);
    if (r <= 0) break;
    got += (size_t)r;
  }
  if (got != total) {
    mn_fail(err, "%s: truncated: header promises %zu data bytes, file has %zu", path, total, got);
    goto out;
  }
  unsigned char extra;
  if (gzread(f, &extra, 1) > 0) {
    mn_fail(err, "%s: trailing bytes after the %zu data bytes the header promises", path, total);
    goto out;
  }
  rc = 0;
out:
  gzclose(f);
  if (rc != 0) {
    free(out->data);
    out->data = NULL;
  }
  return rc;
}

static int read_pair(const char *images, const char *labels, mn_idx_file *im, mn_idx_file *lb,
                     int32_t **y, int *classes, mn_err *err) {
  if (mn_idx_read(images, 3, im, err) != 0) return -1;
  if (mn_idx_read(labels, 1, lb, err) != 0) return -1;
  if (im->dims[0] != lb->dims[0])
    return mn_fail(err, "%s has %u images but %s has %u labels", images, im->dims[0], labels,
                   lb->dims[0]);
  *y = mn_alloc(lb->dims[0], sizeof(int32_t), "labels", err);
  if (!*y) return -1;
  for (uint32_t i = 0; i < lb->dims[0]; i++) {
    (*y)[i] = lb->data[i];
    if (lb->data[i] + 1 > *classes) *classes = lb->data[i] + 1;
  }
  return 0;
}

static void usage(FILE *out) {
  fprintf(out, "usage: mpinet convert idx --train-images F --train-labels F --test-images F\n"
               "                          --test-labels F -o OUT.h5 [--classes K]\n"
               "                          [--class-names a,b,...] [--no-normalise]\n"
               "                          [--no-compression]\n"
               "Converts MNIST-style idx files (gzip-compressed or plain) into mpinet's HDF5\n"
               "layout: /train/x, /test/x uint8 (n, 1, H, W); /train/y, /test/y int32 (n);\n"
               "attributes classes, scale = 1/255, mean/std of the training pixels, source.\n"
               "The images are stored deflated (Fashion-MNIST: 31 MB); --no-compression\n"
               "stores them plain (56 MB), which every rank then reads without inflating\n"
               "them: a faster start (MLP, 2 ranks: 0.56 -> 0.31-0.37 s to the first step).\n");
}

int mn_convert_idx_main(int argc, char **argv) {
  const char *paths[4] = {0}, *out = NULL, *names = NULL;
  int classes = 0, normalise = 1, plain = 0;
  static const struct option opts[] = {{"train-images", required_argument, 0, 1},
                                       {"train-labels", required_argument, 0, 2},
                                       {"test-images", required_argument, 0, 3},
                                       {"test-labels", required_argument, 0, 4},
                                       {"output", required_argument, 0, 'o'},
                                       {"classes", required_argument, 0, 5},
                                       {"class-names", required_argument, 0, 6},
                                       {"no-normalise", no_argument, 0, 7},
                                       {"no-compression", no_argument, 0, 8},
                                       {"help", no_argument, 0, 'h'},
                                       {0, 0, 0, 0}};
  int c;
  optind = 1;
  while ((c = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
    switch (c) {
    case 1:
    case 2:
    case 3:
    case 4: paths[c - 1] = optarg; break;
    case 'o': out = optarg; break;
    case 5: classes = atoi(optarg); break;
    case 6: names = optarg; break;
    case 7: normalise = 0; break;
    case 8: plain = 1; break;
    case 'h': usage(stdout); return 0;
    default: usage(stderr); return 2;
    }
  }
  if (!paths[0] || !paths[1] || !paths[2] || !paths[3] || !out || optind != argc) {
    fprintf(stderr, "mpinet: error: convert idx: missing or extra arguments\n");
    usage(stderr);
    return 2;
  }
  mn_err err;
  mn_idx_file tri = {0}, trl = {0}, tei = {0}, tel = {0};
  int32_t *try = NULL, *tey = NULL;
  int seen = 0, rc = 1;
  if (read_pair(paths[0], paths[1], &tri, &trl, &try, &seen, &err) != 0 ||
      read_pair(paths[2], paths[3], &tei, &tel, &tey, &seen, &err) != 0)
    goto out;
  if (tri.dims[1] != tei.dims[1] || tri.dims[2] != tei.dims[2]) {
    mn_fail(&err, "train images are %ux%u but test images are %ux%u", tri.dims[1], tri.dims[2],
            tei.dims[1], tei.dims[2]);
    goto out;
  }
  if (classes == 0) classes = seen < 2 ? 2 : seen;
  if (seen > classes) {
    mn_fail(&err, "labels go up to %d but --classes is %d", seen - 1, classes);
    goto out;
  }
  mn_split_data train = {.x = tri.data,
                         .x_is_u8 = true,
                         .rank = 4,
                         .dims = {tri.dims[0], 1, tri.dims[1], tri.dims[2]},
                         .labels = try};
  mn_split_data test = {.x = tei.data,
                        .x_is_u8 = true,
                        .rank = 4,
                        .dims = {tei.dims[0], 1, tei.dims[1], tei.dims[2]},
                        .labels = tey};
  char source[2048];
  snprintf(source, sizeof source, "idx: %s, %s, %s, %s", paths[0], paths[1], paths[2], paths[3]);
  mn_dataset_attrs attrs = {.classes = classes,
                            .scale = 1.0 / 255.0,
                            .normalise = normalise,
                            .source = source,
                            .class_names = names,
                            .plain_x = plain};
  if (mn_dataset_write(out, &train, &test, &attrs, &err) != 0) goto out;
  printf("wrote %s: train %u x (1, %u, %u), test %u, %d classes\n", out, tri.dims[0], tri.dims[1],
         tri.dims[2], tei.dims[0], classes);
  rc = 0;
out:
  if (rc != 0) fprintf(stderr, "mpinet: error: %s\n", err.msg);
  free(tri.data), free(trl.data), free(tei.data), free(tel.data), free(try), free(tey);
  return rc;
}
