/* source.h: the rows a job reads, where they lie in the user's own HDF5 files.
 *
 * A source is one or many files ([data] path: a file, a glob taken in natural order, a
 * directory's *.h5, or a comma-separated list of these), each holding the same two datasets
 * ([data] x and y, by default /train/x and /train/y). Their rows, file after file, form one
 * dataset. Every file is probed when the source opens: the same sample shape and dtypes in
 * each, y as long as x, so a bad file fails the start of the job with its name.
 *
 * What a row holds is decided here, once, and applied while a batch is assembled (never by a
 * copy of the data):
 *  - the layout: the sample's stored shape becomes the model's shape ((C, H, W) images,
 *    (T, F) sequences or F features); channel-last images are transposed through `map`;
 *  - the dtype: uint8 is held as it is (4x smaller than float), every other integer or float
 *    type is converted to float32 by HDF5 as rows are read;
 *  - the normalisation: value = raw * a[j] + b[j] for the model's position j, from the
 *    file's scale/mean/std attributes (scalars, or one value per feature or per channel),
 *    or from statistics of the training rows (mn_source_set_stats).
 *
 * A source's rows may be a selection of its files' rows (`seg`, in order): that is how a
 * test fraction is held out (mn_source_holdout) without copying anything. */
#ifndef MN_SOURCE_H
#define MN_SOURCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "layer.h"

typedef enum {
  MN_LAYOUT_AUTO,     /* by the sample's rank: F features, (T, F) sequence, (C, H, W) image */
  MN_LAYOUT_NCHW,     /* (C, H, W) images */
  MN_LAYOUT_NHWC,     /* (H, W, C) images, transposed to (C, H, W) */
  MN_LAYOUT_HW,       /* (H, W) grayscale images, read as (1, H, W) */
  MN_LAYOUT_TF,       /* (T, F) sequences */
  MN_LAYOUT_FEATURES, /* any sample shape, flattened to F features */
} mn_layout;
extern const char *const mn_layout_names[]; /* "auto", "nchw", ... NULL */

typedef enum {
  MN_NORMALISE_FILE,    /* the files' scale/mean/std attributes */
  MN_NORMALISE_NONE,    /* the scale attribute only (uint8: 1/255) */
  MN_NORMALISE_FEATURE, /* mean and std of the training rows, per feature */
  MN_NORMALISE_CHANNEL, /* mean and std of the training rows, per image channel */
} mn_normalise;
extern const char *const mn_normalise_names[];

typedef struct {
  const char *path;  /* a file, glob, directory or comma-separated list of them */
  const char *x, *y; /* dataset names in each file; y NULL or "": x only (predict) */
  mn_layout layout;
  mn_normalise normalise;
  int classes;  /* > 0: the number of classes, overriding the files' attribute */
  int max_open; /* files a reader keeps open at once (0: 16) */
} mn_source_spec;

typedef struct {
  size_t rows;     /* rows of the source */
  mn_shape shape;  /* one sample, as the model sees it */
  bool x_is_u8;    /* rows are held as uint8 (else float32) */
  bool has_labels; /* integer y (classification) vs float targets */
  int classes;     /* with labels: number of classes; else target width */
} mn_split_info;

typedef struct {
  char *path;
  size_t rows;          /* rows of x (and of y) */
  uint64_t stamp[4];    /* device, inode, size and mtime (ns) when the source opened */
  long long chunk_rows; /* rows per HDF5 chunk of x, 0: not chunked */
} mn_source_file;

typedef struct {
  size_t file, first, n; /* rows [first, first + n) of file `file` */
} mn_source_segment;

typedef struct {
  char label[512];     /* the path as configured, for messages */
  char x[256], y[256]; /* y[0] == 0: no y */
  mn_source_file *files;
  size_t nfiles;
  mn_source_segment *seg; /* the source's rows, in order */
  size_t *seg_start;      /* nseg + 1: the source row where each segment starts */
  size_t nseg;
  mn_split_info info;
  mn_shape stored;  /* one sample as stored */
  mn_layout layout; /* as resolved (never auto) */
  mn_normalise normalise;
  size_t row_len; /* values per sample */
  size_t x_elem;  /* bytes per held value: 1 or 4 */
  double scale;   /* raw -> float (uint8: 1/255 unless the file says) */
  float *a, *b;   /* row_len each, in the model's order: value = raw * a[j] + b[j] */
  uint32_t *map;  /* row_len: model position j reads stored position map[j]; NULL: same */
  /* standardised targets (classes values each; NULL: as stored): t' = t * ta[k] + tb[k] */
  float *ta, *tb;
  float *target_mean, *target_std;
  char norm[160]; /* where a and b came from, for the start-up summary */
  char note[320]; /* a warning worth printing once (a layout that looks wrong), or "" */
  int max_open;
} mn_source;

/* Finds the files, probes every one, reads the attributes. */
int mn_source_open(mn_source *s, const mn_source_spec *spec, mn_err *err);
void mn_source_free(mn_source *s);
/* mpinet's own layout: /SPLIT/x and /SPLIT/y of one file, normalised by its attributes. */
int mn_source_open_split(mn_source *s, const char *path, const char *split, mn_err *err);
/* Checks that test rows fit the model trained on s (sample shape, labels, classes) and gives
 * them s's normalisation: the training rows' statistics, never the test files' own. */
int mn_source_match(mn_source *test, const mn_source *s, mn_err *err);
/* Splits `all` into train and test: `fraction` of its blocks (one HDF5 chunk of rows, or 64
 * rows where x is not chunked; never across files), drawn by `seed`, become test. Depends on
 * nothing but the files, fraction and seed: the same rows at every world size and resume. */
int mn_source_holdout(const mn_source *all, double fraction, uint64_t seed, mn_source *train,
                      mn_source *test, mn_err *err);
/* A hash of which file rows the source holds, in order (not of their values): the same held-out
 * test rows print the same fingerprint at any world size. */
uint64_t mn_source_fingerprint(const mn_source *s);
/* Normalisation from statistics: mean and std of the scaled values, one per feature (for a
 * (T, F) or F sample) or per channel (images); count values each. */
int mn_source_set_stats(mn_source *s, const double *mean, const double *std, int count,
                        mn_err *err);
/* Standardises float targets: t' = (t - mean[k]) / std[k], one per target column. */
int mn_source_set_target_stats(mn_source *s, const double *mean, const double *std, mn_err *err);
/* The input transformation a checkpoint recorded (value = raw * a[j] + b[j]; targets
 * standardised when target_mean is not NULL), in place of the files' own. */
int mn_source_set_input(mn_source *s, const float *a, const float *b, size_t len,
                        const float *target_mean, const float *target_std, int ntargets,
                        mn_err *err);
/* How many statistics normalise = feature/channel computes (0: not for this shape). */
int mn_source_stat_count(const mn_source *s, mn_normalise how);
/* Which statistic the model's position j belongs to. */
int mn_source_stat_of(const mn_source *s, mn_normalise how, size_t j);
/* Cuts source rows [begin, begin + n) into blocks that never cross a segment and hold at
 * most one HDF5 chunk of their file (or 1024 rows when x is not chunked): first[k] is block
 * k's first row (first may be NULL: count them); returns the number of blocks, and the
 * largest block's rows in *max_rows. */
size_t mn_source_blocks(const mn_source *s, size_t begin, size_t n, size_t *first,
                        size_t *max_rows);
/* A file's device, inode, size and mtime (ns): a file replaced since has another stamp. */
void mn_source_stamp(const char *path, uint64_t stamp[4]);

/* Reads rows through open files, at most max_open at once (least recently used closed
 * first). Each read checks that the file is still the one probed, and checks the rows:
 * labels in [0, classes), every float finite; a failure names the file and dataset. Rows
 * are stored as held (uint8 or float32), in the stored layout. Takes no lock itself: the
 * caller holds mn_h5_lock() around it when another thread may be in HDF5. */
typedef struct mn_source_reader mn_source_reader;
mn_source_reader *mn_source_reader_open(const mn_source *s, const char *why, mn_err *err);
int mn_source_read(mn_source_reader *r, size_t first, size_t n, void *x, int32_t *labels,
                   float *targets, mn_err *err);
void mn_source_reader_close(mn_source_reader *r);

#endif
