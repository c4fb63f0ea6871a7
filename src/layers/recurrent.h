/* recurrent.h: what rnn.c and lstm.c share: their keys and shapes. */
#ifndef MN_RECURRENT_H
#define MN_RECURRENT_H

#include "layer.h"

/* Reads units, return_sequences and init for a layer with `gates` blocks of H units per
 * step (1 for rnn, 4 for lstm); sets out and nparams = gates*H*(F + H + 1). */
int mn_recurrent_configure(mn_layer *l, mn_cfg_section *cfg, int gates, int *t, int *f, int *h,
                           bool *sequences, mn_err *err);

#endif
