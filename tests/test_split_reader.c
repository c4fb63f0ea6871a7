#define _POSIX_C_SOURCE 200809L
/* test_split_reader.c: the reader evaluation uses (dataset.h) against a gzip-compressed
 * uint8 file, in chunks larger than HDF5's default cache, whose rows say who they are.
 * Reads of any size, in order, must return exactly what mn_split_load holds; a read past the
 * end fails with a message; and once the file has been rewritten, both the reader and the
 * stream's check before each window refuse it instead of mixing two files into one run. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "dataset.h"
#include "h5util.h"

enum { ROWS = 3000, F = 784, K = 7 };

static uint8_t value(size_t row, size_t col) { return (uint8_t)((row * 7 + col) % 251); }

/* /test/x in gzip chunks of CHUNK rows (1.6 MB: past HDF5's 1 MiB default chunk cache, as
 * files written by other tools can be), /test/y labels, root attribute classes */
enum { CHUNK = 2000 };
static int write_file(const char *path, size_t rows) {
  uint8_t *x = malloc(rows * F);
  int32_t *y = malloc(rows * sizeof *y);
  for (size_t i = 0; i < rows; i++) {
    for (size_t j = 0; j < F; j++) x[i * F + j] = value(i, j);
    y[i] = (int32_t)(i % K);
  }
  hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  hid_t g = H5Gcreate2(f, "test", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  hsize_t dims[2] = {rows, F}, chunk[2] = {CHUNK, F};
  hid_t space = H5Screate_simple(2, dims, NULL), dcpl = H5Pcreate(H5P_DATASET_CREATE);
  H5Pset_chunk(dcpl, 2, chunk);
  H5Pset_deflate(dcpl, 4);
  hid_t d = H5Dcreate2(g, "x", H5T_NATIVE_UINT8, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
  herr_t rc = H5Dwrite(d, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, x);
  H5Dclose(d), H5Pclose(dcpl), H5Sclose(space);
  space = H5Screate_simple(1, dims, NULL);
  d = H5Dcreate2(g, "y", H5T_NATIVE_INT32, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  if (rc >= 0) rc = H5Dwrite(d, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, y);
  H5Dclose(d), H5Sclose(space), H5Gclose(g);
  if (rc >= 0) rc = mn_h5_write_attr_long(f, "classes", K);
  H5Fclose(f);
  free(x);
  free(y);
  return rc < 0 ? -1 : 0;
}

int main(void) {
  char path[] = "/tmp/mpinet-test-reader-XXXXXX";
  int fd = mkstemp(path);
  close(fd);
  mn_err err;
  CHECK(write_file(path, ROWS) == 0, "cannot write %s", path);

  mn_source src;
  mn_split whole;
  CHECK(mn_source_open_split(&src, path, "test", &err) == 0, "%s", err.msg);
  CHECK(mn_split_load(&whole, &src, 0, SIZE_MAX, &err) == 0, "%s", err.msg);
  CHECK(src.info.rows == ROWS && src.info.x_is_u8 && src.files[0].chunk_rows == CHUNK,
        "source: %zu rows, chunks of %lld", src.info.rows, src.files[0].chunk_rows);
  mn_source_reader *r = mn_source_reader_open(&src, "evaluation", &err);
  CHECK(r != NULL, "%s", err.msg);
  uint8_t *x = malloc((size_t)ROWS * F);
  int32_t *y = malloc(ROWS * sizeof *y);
  const size_t sizes[] = {128, 1, 1337, 500, 7};
  size_t at = 0, bad = 0;
  for (int k = 0; r && at < ROWS; k++) {
    size_t n = sizes[k % 5] < ROWS - at ? sizes[k % 5] : ROWS - at;
    CHECK(mn_source_read(r, at, n, x, y, NULL, &err) == 0, "rows %zu+%zu: %s", at, n, err.msg);
    if (memcmp(x, (const uint8_t *)whole.x + at * F, n * F) != 0 ||
        memcmp(y, whole.labels + at, n * sizeof *y) != 0)
      bad++;
    for (size_t i = 0; i < n; i++)
      if (x[i * F + F - 1] != value(at + i, F - 1) || y[i] != (int32_t)((at + i) % K)) bad++;
    at += n;
  }
  CHECK(bad == 0, "%zu reads or rows differ from the loaded split", bad);
  CHECK(r && mn_source_read(r, ROWS - 10, 20, x, y, NULL, &err) != 0 &&
            strstr(err.msg, "asked for, but /test/x has") != NULL,
        "a read past the end: %s", err.msg);
  mn_source_reader_close(r);

  /* the file is rewritten (here with one row fewer) while a job holds its description */
  CHECK(write_file(path, ROWS - 1) == 0, "cannot write %s", path);
  err.msg[0] = '\0';
  r = mn_source_reader_open(&src, "evaluation", &err);
  CHECK(r && mn_source_read(r, 0, 1, x, y, NULL, &err) != 0 &&
            strstr(err.msg, "changed since the job started (evaluation reads it again)"),
        "a rewritten file was read again: '%s'", err.msg);
  mn_source_reader_close(r);

  free(x);
  free(y);
  mn_split_free(&whole);
  mn_source_free(&src);
  unlink(path);
  return check_report("test_split_reader");
}
