/* data_stats.h: mean and standard deviation of the training rows, for [data] normalise =
 * feature | channel and standardise_targets.
 *
 * The rows are cut into fixed blocks of 4096; rank r takes blocks r, r + N, ...; each block's
 * count, mean and sum of squared deviations are computed in double precision (two passes over
 * the block) and the blocks are combined in block order on every rank (Chan et al.'s pairwise
 * update). Nothing depends on the world size but who computes a block, so the figures are the
 * same bits at any N. Values are taken after the layout and the file's `scale`, so NHWC and
 * NCHW copies of the same images give the same statistics. */
#ifndef MN_DATA_STATS_H
#define MN_DATA_STATS_H

#include "source.h"
#include "world.h"

typedef struct {
  int ninputs, ntargets;            /* statistics computed (0: not asked for) */
  double *mean, *std;               /* ninputs */
  double *target_mean, *target_std; /* ntargets */
} mn_data_stats;

/* Computes what src->normalise (feature or channel) and `targets` ask for, over all of src's
 * rows, and applies it to src (mn_source_set_stats, mn_source_set_target_stats). Collective. A
 * constant feature (std 0) is given std 1, as scikit-learn's StandardScaler does. */
int mn_data_stats_apply(const mn_world *w, mn_source *src, bool targets, mn_data_stats *out,
                        mn_err *err);
/* The text of RUN_DIR/normalisation.json: what was computed, for people and other tools
 * (malloc'ed; NULL if out of memory). */
char *mn_data_stats_json(const mn_data_stats *st, const mn_source *src);
void mn_data_stats_free(mn_data_stats *st);

#endif
