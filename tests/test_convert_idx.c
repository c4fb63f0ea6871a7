/* test_convert_idx.c: `mpinet convert idx` on tiny idx files written here: plain and gzip
 * forms convert and read back exactly; wrong magic, truncation, trailing bytes and a count
 * mismatch are rejected with a message naming the file, and leave no output behind. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "check.h"
#include "convert.h"
#include "dataset.h"

enum { ROWS = 5, H = 3, W = 4 };

static void put_u32(unsigned char *p, unsigned v) {
  p[0] = (unsigned char)(v >> 24), p[1] = (unsigned char)(v >> 16);
  p[2] = (unsigned char)(v >> 8), p[3] = (unsigned char)v;
}

/* Writes an idx file; `cut` bytes removed from the end, `extra` bytes appended. */
static void write_idx(const char *path, bool gz, int dims, unsigned rows, unsigned char magic3,
                      int cut, int extra) {
  unsigned char buf[1024];
  size_t n = 0;
  buf[0] = 0, buf[1] = 0, buf[2] = magic3, buf[3] = (unsigned char)dims;
  n = 4;
  put_u32(buf + n, rows), n += 4;
  size_t values = rows;
  if (dims == 3) {
    put_u32(buf + n, H), n += 4;
    put_u32(buf + n, W), n += 4;
    values *= H * W;
  }
  for (size_t i = 0; i < values; i++) buf[n++] = (unsigned char)(dims == 3 ? (i * 7) % 256 : i % 3);
  n -= (size_t)cut;
  for (int i = 0; i < extra; i++) buf[n++] = 0xee;
  if (gz) {
    gzFile f = gzopen(path, "wb");
    gzwrite(f, buf, (unsigned)n);
    gzclose(f);
  } else {
    FILE *f = fopen(path, "wb");
    fwrite(buf, 1, n, f);
    fclose(f);
  }
}

static int convert(const char *dir, const char *out) {
  char a[512], b[512], c[512], d[512];
  snprintf(a, sizeof a, "%s/tri", dir), snprintf(b, sizeof b, "%s/trl", dir);
  snprintf(c, sizeof c, "%s/tei", dir), snprintf(d, sizeof d, "%s/tel", dir);
  char *argv[] = {
      "idx", "--train-images", a,   "--train-labels", b, "--test-images", c, "--test-labels", d,
      "-o",  (char *)out,      NULL};
  return mn_convert_idx_main(11, argv);
}

static void write_set(const char *dir, bool gz) {
  char p[512];
  snprintf(p, sizeof p, "%s/tri", dir), write_idx(p, gz, 3, ROWS, 8, 0, 0);
  snprintf(p, sizeof p, "%s/trl", dir), write_idx(p, gz, 1, ROWS, 8, 0, 0);
  snprintf(p, sizeof p, "%s/tei", dir), write_idx(p, gz, 3, 2, 8, 0, 0);
  snprintf(p, sizeof p, "%s/tel", dir), write_idx(p, gz, 1, 2, 8, 0, 0);
}

static void test_round_trip(const char *dir, bool gz) {
  char out[512];
  snprintf(out, sizeof out, "%s/ok.h5", dir);
  write_set(dir, gz);
  CHECK(convert(dir, out) == 0, "%s conversion failed", gz ? "gzip" : "plain");
  mn_source src;
  mn_split s = {0};
  mn_err err;
  CHECK(mn_source_open_split(&src, out, "train", &err) == 0 &&
            mn_split_load(&s, &src, 0, SIZE_MAX, &err) == 0,
        "%s", err.msg);
  CHECK(s.n == ROWS && s.info.shape.rank == 3 && s.info.shape.dim[0] == 1 &&
            s.info.shape.dim[1] == H && s.info.shape.dim[2] == W && s.info.x_is_u8,
        "shape/type wrong");
  const unsigned char *x = s.x;
  int bad = 0;
  for (size_t i = 0; i < ROWS * H * W; i++) bad += x[i] != (unsigned char)((i * 7) % 256);
  CHECK(bad == 0, "%d pixels differ", bad);
  for (int i = 0; i < ROWS; i++) CHECK(s.labels[i] == i % 3, "label %d", i);
  CHECK(s.info.classes == 3, "classes %d", s.info.classes);
  mn_split_free(&s);
  mn_source_free(&src);
  unlink(out);
}

/* Breaks one file, expects rejection and no output file. */
static void test_rejects(const char *dir, const char *which, int dims, unsigned rows,
                         unsigned char magic3, int cut, int extra, const char *what) {
  char p[512], out[512];
  write_set(dir, true);
  snprintf(p, sizeof p, "%s/%s", dir, which);
  write_idx(p, true, dims, rows, magic3, cut, extra);
  snprintf(out, sizeof out, "%s/bad.h5", dir);
  unlink(out);
  fprintf(stderr, "(expected error for %s follows)\n", what);
  CHECK(convert(dir, out) != 0, "%s was accepted", what);
  CHECK(access(out, F_OK) != 0, "%s left an output file", what);
}

int main(void) {
  char dir[] = "/tmp/mpinet-idx-XXXXXX";
  if (!mkdtemp(dir)) return 2;
  test_round_trip(dir, false);
  test_round_trip(dir, true);
  test_rejects(dir, "tri", 3, ROWS, 9, 0, 0, "wrong magic");
  test_rejects(dir, "tri", 3, ROWS, 8, 5, 0, "truncated images");
  test_rejects(dir, "trl", 1, ROWS, 8, 0, 3, "trailing bytes");
  test_rejects(dir, "trl", 1, ROWS - 1, 8, 0, 0, "count mismatch");
  test_rejects(dir, "tel", 3, 2, 8, 0, 0, "labels file with image dims");
  char cmd[600];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  if (system(cmd) != 0) return 2;
  return check_report("test_convert_idx");
}
