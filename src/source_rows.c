#define _POSIX_C_SOURCE 200809L /* strdup */
/* source_rows.c: which rows of its files a source holds (a test fraction held out, the
 * stream's blocks) and reading them through a bounded set of open files (see source.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "h5util.h"
#include "hash.h"
#include "rng.h"
#include "source.h"

/* A deep copy of s with the given segments. */
static int copy_with(const mn_source *s, const mn_source_segment *seg, size_t nseg, mn_source *out,
                     mn_err *err) {
  *out = *s;
  out->ta = out->tb = out->target_mean = out->target_std = NULL; /* set after the split */
  out->files = malloc(s->nfiles * sizeof *out->files);
  out->seg = malloc((nseg ? nseg : 1) * sizeof *out->seg);
  out->seg_start = malloc((nseg + 1) * sizeof *out->seg_start);
  out->a = malloc(s->row_len * sizeof *out->a);
  out->b = malloc(s->row_len * sizeof *out->b);
  out->map = s->map ? malloc(s->row_len * sizeof *out->map) : NULL;
  out->nfiles = 0;
  int rc = out->files && out->seg && out->seg_start && out->a && out->b && (out->map || !s->map)
               ? 0
               : mn_fail(err, "%s: out of memory", s->label);
  for (size_t i = 0; i < s->nfiles && rc == 0; i++, out->nfiles++) {
    out->files[i] = s->files[i];
    if (!(out->files[i].path = strdup(s->files[i].path)))
      rc = mn_fail(err, "%s: out of memory", s->label);
  }
  if (rc == 0) {
    memcpy(out->a, s->a, s->row_len * sizeof *out->a);
    memcpy(out->b, s->b, s->row_len * sizeof *out->b);
    if (s->map) memcpy(out->map, s->map, s->row_len * sizeof *out->map);
    size_t at = 0;
    for (size_t k = 0; k < nseg; k++) {
      out->seg[k] = seg[k];
      out->seg_start[k] = at;
      at += seg[k].n;
    }
    out->seg_start[nseg] = at;
    out->nseg = nseg;
    out->info.rows = at;
  }
  if (rc != 0) mn_source_free(out);
  return rc;
}

/* Rows per hold-out block of file i: its chunk, or 64 rows. */
static size_t holdout_rows(const mn_source_file *f) {
  return f->chunk_rows > 0 ? (size_t)f->chunk_rows : 64;
}

int mn_source_holdout(const mn_source *all, double fraction, uint64_t seed, mn_source *train,
                      mn_source *test, mn_err *err) {
  memset(train, 0, sizeof *train);
  memset(test, 0, sizeof *test);
  size_t nblocks = 0;
  for (size_t k = 0; k < all->nseg; k++) {
    const mn_source_segment *g = &all->seg[k];
    const size_t b = holdout_rows(&all->files[g->file]);
    nblocks += (g->first + g->n - 1) / b - g->first / b + 1;
  }
  const size_t held = (size_t)llround(fraction * (double)nblocks);
  if (nblocks > UINT32_MAX || held < 1 || held >= nblocks)
    return mn_fail(err,
                   "%s: test_fraction = %g holds out %zu of its %zu blocks (HDF5 chunks or 64 "
                   "rows); it must leave at least one block for each side",
                   all->label, fraction, held, nblocks);
  uint32_t *perm = malloc(nblocks * sizeof *perm);
  bool *is_test = calloc(nblocks, sizeof *is_test);
  mn_source_segment *seg[2] = {malloc(nblocks * sizeof **seg), malloc(nblocks * sizeof **seg)};
  int rc = perm && is_test && seg[0] && seg[1] ? 0 : mn_fail(err, "%s: out of memory", all->label);
  size_t nseg[2] = {0, 0};
  if (rc == 0) {
    mn_rng_permutation(perm, (uint32_t)nblocks, seed, MN_STREAM_HOLDOUT, 0);
    for (size_t i = 0; i < held; i++) is_test[perm[i]] = true;
    size_t id = 0;
    for (size_t k = 0; k < all->nseg; k++) {
      const mn_source_segment *g = &all->seg[k];
      const size_t b = holdout_rows(&all->files[g->file]);
      for (size_t r = g->first; r < g->first + g->n; id++) {
        const size_t end = (r / b + 1) * b < g->first + g->n ? (r / b + 1) * b : g->first + g->n;
        const int side = is_test[id];
        mn_source_segment *last = nseg[side] ? &seg[side][nseg[side] - 1] : NULL;
        if (last && last->file == g->file && last->first + last->n == r)
          last->n += end - r; /* contiguous with the side's last block */
        else
          seg[side][nseg[side]++] = (mn_source_segment){g->file, r, end - r};
        r = end;
      }
    }
    rc = copy_with(all, seg[0], nseg[0], train, err);
    if (rc == 0) rc = copy_with(all, seg[1], nseg[1], test, err);
    if (rc != 0) mn_source_free(train);
  }
  free(perm), free(is_test), free(seg[0]), free(seg[1]);
  return rc;
}

uint64_t mn_source_fingerprint(const mn_source *s) {
  uint64_t h = MN_FNV_SEED;
  for (size_t k = 0; k < s->nseg; k++) {
    const uint64_t v[3] = {s->seg[k].file, s->seg[k].first, s->seg[k].n};
    h = mn_fnv1a64(h, v, sizeof v);
  }
  return h;
}

/* The last segment starting at or before source row `row`. */
static size_t segment_of(const mn_source *s, size_t row) {
  size_t lo = 0, hi = s->nseg;
  while (hi - lo > 1) {
    const size_t mid = (lo + hi) / 2;
    if (s->seg_start[mid] <= row)
      lo = mid;
    else
      hi = mid;
  }
  return lo;
}

size_t mn_source_blocks(const mn_source *s, size_t begin, size_t n, size_t *first,
                        size_t *max_rows) {
  size_t count = 0, most = 0, r = begin;
  const size_t end = begin + n;
  size_t k = n ? segment_of(s, r) : 0;
  while (r < end) {
    const mn_source_segment *g = &s->seg[k];
    const mn_source_file *f = &s->files[g->file];
    const size_t b = f->chunk_rows > 0 ? (size_t)f->chunk_rows : 1024;
    const size_t file_row = g->first + (r - s->seg_start[k]);
    size_t stop = s->seg_start[k] + ((file_row / b + 1) * b - g->first); /* the chunk's end */
    if (stop > s->seg_start[k + 1]) stop = s->seg_start[k + 1];
    if (stop > end) stop = end;
    if (first) first[count] = r;
    count++;
    if (stop - r > most) most = stop - r;
    r = stop;
    if (r == s->seg_start[k + 1]) k++;
  }
  *max_rows = most;
  return count;
}

/* ---- reading ---- */

typedef struct {
  long long file; /* -1: free */
  hid_t f, dx, dy;
  unsigned long long used;
} open_file;

struct mn_source_reader {
  const mn_source *s;
  const char *why;
  open_file *slot;
  int nslots;
  unsigned long long clock;
};

mn_source_reader *mn_source_reader_open(const mn_source *s, const char *why, mn_err *err) {
  mn_source_reader *r = calloc(1, sizeof *r);
  if (r) r->slot = calloc((size_t)s->max_open, sizeof *r->slot);
  if (!r || !r->slot) {
    free(r);
    mn_fail(err, "%s: out of memory", s->label);
    return NULL;
  }
  r->s = s;
  r->why = why;
  r->nslots = s->max_open;
  for (int i = 0; i < r->nslots; i++) r->slot[i].file = -1;
  return r;
}

static void close_slot(open_file *o) {
  if (o->file < 0) return;
  if (o->dx >= 0) H5Dclose(o->dx);
  if (o->dy >= 0) H5Dclose(o->dy);
  H5Fclose(o->f);
  o->file = -1;
}

/* The open datasets of file i, opening it (in the least recently used slot) if need be. */
static open_file *open_slot(mn_source_reader *r, size_t i, mn_err *err) {
  const mn_source *s = r->s;
  const mn_source_file *fi = &s->files[i];
  uint64_t now[4];
  mn_source_stamp(fi->path, now);
  if (memcmp(now, fi->stamp, sizeof now) != 0) {
    mn_fail(err, "%s: changed since the job started (%s reads it again); restart the job", fi->path,
            r->why);
    return NULL;
  }
  open_file *o = NULL;
  for (int k = 0; k < r->nslots && !o; k++)
    if (r->slot[k].file == (long long)i) o = &r->slot[k];
  if (!o) {
    o = &r->slot[0];
    for (int k = 1; k < r->nslots; k++)
      if (r->slot[k].file < 0 || (o->file >= 0 && r->slot[k].used < o->used)) o = &r->slot[k];
    close_slot(o);
    mn_err ignored;
    o->f = mn_h5_open_read(fi->path, &ignored);
    if (o->f < 0) {
      mn_fail(err, "%s: cannot open it again (%s)", fi->path, r->why);
      return NULL;
    }
    /* Reads of a few rows each cut through the same compressed chunk many times: a chunk
     * larger than HDF5's chunk cache (1 MiB by default; mpinet's converters write chunks
     * below it, other tools may not) would be inflated whole for every read. A cache that
     * holds one chunk inflates each once per pass. */
    size_t stored = 1;
    for (int k = 0; k < s->stored.rank; k++) stored *= (size_t)s->stored.dim[k];
    const size_t chunk_bytes = (size_t)fi->chunk_rows * stored * 8;
    hid_t dapl = H5Pcreate(H5P_DATASET_ACCESS);
    if (chunk_bytes > ((size_t)1 << 20))
      H5Pset_chunk_cache(dapl, H5D_CHUNK_CACHE_NSLOTS_DEFAULT, chunk_bytes,
                         H5D_CHUNK_CACHE_W0_DEFAULT);
    o->dx = H5Dopen2(o->f, s->x, dapl);
    o->dy = s->y[0] ? H5Dopen2(o->f, s->y, H5P_DEFAULT) : H5I_INVALID_HID;
    H5Pclose(dapl);
    o->file = (long long)i;
  }
  o->used = ++r->clock;
  return o;
}

void mn_source_reader_close(mn_source_reader *r) {
  if (!r) return;
  for (int k = 0; k < r->nslots; k++) close_slot(&r->slot[k]);
  free(r->slot);
  free(r);
}

/* Reads rows [begin, begin + n) of an open dataset whose other dimensions are read whole. */
static int read_rows(hid_t d, hid_t mem_type, size_t begin, size_t n, void *out) {
  if (d < 0) return -1;
  hid_t fs = H5Dget_space(d);
  hsize_t dims[8], start[8] = {0}, count[8];
  int r = H5Sget_simple_extent_ndims(fs);
  H5Sget_simple_extent_dims(fs, dims, NULL);
  for (int i = 0; i < r; i++) count[i] = dims[i];
  start[0] = begin;
  count[0] = n;
  H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL);
  hid_t ms = H5Screate_simple(r, count, NULL);
  herr_t rc = H5Dread(d, mem_type, ms, fs, H5P_DEFAULT, out);
  H5Sclose(ms);
  H5Sclose(fs);
  return rc < 0 ? -1 : 0;
}

/* Rows [row, row + n) of file i, checked. */
static int read_file_rows(mn_source_reader *r, size_t i, size_t row, size_t n, void *x,
                          int32_t *labels, float *targets, mn_err *err) {
  const mn_source *s = r->s;
  const char *path = s->files[i].path;
  open_file *o = open_slot(r, i, err);
  if (!o) return -1;
  if (x && read_rows(o->dx, s->info.x_is_u8 ? H5T_NATIVE_UINT8 : H5T_NATIVE_FLOAT, row, n, x) != 0)
    return mn_fail(err, "%s: cannot read %s rows [%zu, %zu) (corrupt or truncated file?)", path,
                   s->x, row, row + n);
  const size_t len = s->row_len;
  for (size_t k = 0; x && !s->info.x_is_u8 && k < n * len; k++)
    if (!isfinite(((const float *)x)[k]))
      return mn_fail(err, "%s: %s has a non-finite value at row %zu", path, s->x, row + k / len);
  if (!labels && !targets) return 0;
  if (labels ? read_rows(o->dy, H5T_NATIVE_INT32, row, n, labels) != 0
             : read_rows(o->dy, H5T_NATIVE_FLOAT, row, n, targets) != 0)
    return mn_fail(err, "%s: cannot read %s rows [%zu, %zu) (corrupt or truncated file?)", path,
                   s->y, row, row + n);
  for (size_t k = 0; labels && k < n; k++)
    if (labels[k] < 0 || labels[k] >= s->info.classes)
      return mn_fail(err, "%s: %s[%zu] = %d is outside [0, classes = %d)", path, s->y, row + k,
                     labels[k], s->info.classes);
  const size_t width = (size_t)s->info.classes;
  for (size_t k = 0; targets && k < n * width; k++)
    if (!isfinite(targets[k]))
      return mn_fail(err, "%s: %s has a non-finite value at row %zu", path, s->y, row + k / width);
  return 0;
}

int mn_source_read(mn_source_reader *r, size_t first, size_t n, void *x, int32_t *labels,
                   float *targets, mn_err *err) {
  const mn_source *s = r->s;
  if (first + n > s->info.rows)
    return mn_fail(err, "%s: rows [%zu, %zu) asked for, but %s has %zu", s->label, first, first + n,
                   s->x, s->info.rows);
  const size_t width = s->info.has_labels ? 1 : (size_t)s->info.classes;
  for (size_t done = 0; done < n;) {
    const size_t k = segment_of(s, first + done), file = s->seg[k].file,
                 row = s->seg[k].first + (first + done - s->seg_start[k]);
    size_t m = s->seg_start[k + 1] - (first + done);
    if (m > n - done) m = n - done;
    if (read_file_rows(r, file, row, m, x ? (char *)x + done * s->row_len * s->x_elem : NULL,
                       labels ? labels + done : NULL, targets ? targets + done * width : NULL,
                       err) != 0)
      return -1;
    done += m;
  }
  return 0;
}
