/* augment.h: data augmentation of training images ([augment]), the torchvision way:
 * RandomCrop(padding = P) on the raw image (its border is the raw value 0), then
 * RandomHorizontalFlip, and after normalisation RandomErasing(p, scale 0.02-0.33, ratio
 * 0.3-3.3, value 0).
 *
 * Every random choice is a function of (seed, epoch, dataset row) alone (rng.h), so N ranks
 * draw exactly what 1 rank draws whatever batch a row falls in, a resumed run draws what an
 * uninterrupted one would have, and reproducible mode keeps its bits at any world size. The
 * loader applies it to each batch as it is assembled, after any layout transpose and
 * normalisation, so uint8 and float data alike. Per-channel or scale-only normalisation
 * commutes with the crop and the flip exactly; with a mean and std per feature, a moved pixel
 * keeps the normalisation of the position it came from. */
#ifndef MN_AUGMENT_H
#define MN_AUGMENT_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "error.h"
#include "layer.h"

typedef struct {
  bool on;        /* the config has an [augment] section that asks for something */
  int pad;        /* crop_padding: P (0: no crop) */
  bool flip;      /* flip = horizontal */
  double erasing; /* erasing: the probability of erasing a rectangle (0: never) */
  int c, h, w;    /* the images' shape */
} mn_augment;

/* What one image gets: the crop's offset (the output's pixel (r, c) is the input's
 * (r + dy, c + dx), or the border), the flip, and the erased rectangle (eh = 0: none). */
typedef struct {
  int dy, dx;
  bool flip;
  int ey, ex, eh, ew;
} mn_augment_draw;

/* Reads [augment] (section may be NULL: off) for samples of the given shape; an error
 * naming the section when they are not images (C, H, W). */
int mn_augment_parse(mn_augment *a, mn_cfg_section *section, mn_shape shape, mn_err *err);
/* The draws of one image: a pure function of (seed, epoch, row). */
mn_augment_draw mn_augment_choose(const mn_augment *a, uint64_t seed, long long epoch,
                                  uint64_t row);
/* Augments count images of x in place, image i being dataset row rows[i]; pad[j] is the
 * normalised value of the raw 0 at position j of an image (its border); scratch holds one
 * image. */
void mn_augment_apply(const mn_augment *a, uint64_t seed, long long epoch, const uint64_t *rows,
                      int count, float *x, const float *pad, float *scratch);
/* "crop_padding 4, flip horizontal, erasing 0.5" for the start-up lines. */
void mn_augment_describe(const mn_augment *a, char *buf, size_t len);

#endif
