/* augment.c: [augment] (augment.h). */
#include "augment.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "rng.h"

int mn_augment_parse(mn_augment *a, mn_cfg_section *section, mn_shape shape, mn_err *err) {
  memset(a, 0, sizeof *a);
  if (!section) return 0;
  long pad;
  int flip;
  static const char *const flips[] = {"none", "horizontal", NULL};
  if (mn_cfg_int(section, "crop_padding", 0, 0, 1 << 12, &pad, err) != 0 ||
      mn_cfg_choice(section, "flip", flips, 0, &flip, err) != 0 ||
      mn_cfg_double(section, "erasing", 0.0, 0.0, 1.0, &a->erasing, err) != 0)
    return -1;
  a->pad = (int)pad, a->flip = flip == 1;
  a->on = a->pad > 0 || a->flip || a->erasing > 0.0;
  if (shape.rank != 3) {
    char where[700], got[64];
    mn_cfg_where(section, NULL, where, sizeof where);
    mn_shape_format(shape, got, sizeof got);
    return mn_fail(err, "%s: augmentation is for images (C, H, W), and the data's samples are %s",
                   where, got);
  }
  a->c = shape.dim[0], a->h = shape.dim[1], a->w = shape.dim[2];
  return 0;
}

mn_augment_draw mn_augment_choose(const mn_augment *a, uint64_t seed, long long epoch,
                                  uint64_t row) {
  /* the epoch's key, then (row, draw): draws 0-3 the crop, flip and erasing, then four per
   * erasing attempt */
  const uint64_t key = mn_rng_u64(seed, MN_STREAM_AUGMENT, (uint64_t)epoch);
  mn_augment_draw d = {0};
  if (a->pad > 0) {
    d.dy = (int)mn_rng_below(key, row, 0, 2 * (uint32_t)a->pad + 1) - a->pad;
    d.dx = (int)mn_rng_below(key, row, 1, 2 * (uint32_t)a->pad + 1) - a->pad;
  }
  d.flip = a->flip && mn_rng_uniform(key, row, 2) < 0.5f;
  if (a->erasing > 0.0 && mn_rng_uniform(key, row, 3) < a->erasing) {
    /* torchvision's RandomErasing: up to 10 tries of an area of 2-33% of the image and an
     * aspect ratio log-uniform in [0.3, 3.3], rounded half to even as Python rounds */
    const double area = (double)a->h * a->w, lo = log(0.3), hi = log(3.3);
    for (int t = 0; t < 10; t++) {
      const uint64_t k = 4 + 4 * (uint64_t)t;
      const double s = area * (0.02 + (0.33 - 0.02) * mn_rng_uniform(key, row, k));
      const double r = exp(lo + (hi - lo) * mn_rng_uniform(key, row, k + 1));
      const int eh = (int)nearbyint(sqrt(s * r)), ew = (int)nearbyint(sqrt(s / r));
      if (!(eh < a->h && ew < a->w)) continue;
      d.eh = eh, d.ew = ew;
      d.ey = (int)mn_rng_below(key, row, k + 2, (uint32_t)(a->h - eh + 1));
      d.ex = (int)mn_rng_below(key, row, k + 3, (uint32_t)(a->w - ew + 1));
      break;
    }
  }
  return d;
}

void mn_augment_apply(const mn_augment *a, uint64_t seed, long long epoch, const uint64_t *rows,
                      int count, float *x, const float *pad, float *scratch) {
  if (!a->on) return;
  const int h = a->h, w = a->w;
  const size_t plane = (size_t)h * w, len = (size_t)a->c * plane;
  for (int i = 0; i < count; i++) {
    const mn_augment_draw d = mn_augment_choose(a, seed, epoch, rows[i]);
    float *img = x + (size_t)i * len;
    if (d.dy != 0 || d.dx != 0 || d.flip) {
      memcpy(scratch, img, len * sizeof(float));
      for (int c = 0; c < a->c; c++)
        for (int r = 0; r < h; r++) {
          const int sr = r + d.dy;
          float *out = img + c * plane + (size_t)r * w;
          const float *border = pad + c * plane + (size_t)r * w;
          for (int col = 0; col < w; col++) {
            const int sc = (d.flip ? w - 1 - col : col) + d.dx;
            out[col] = sr >= 0 && sr < h && sc >= 0 && sc < w
                           ? scratch[c * plane + (size_t)sr * w + sc]
                           : border[col];
          }
        }
    }
    for (int c = 0; c < a->c && d.eh > 0; c++)
      for (int r = d.ey; r < d.ey + d.eh; r++)
        memset(img + c * plane + (size_t)r * w + d.ex, 0, (size_t)d.ew * sizeof(float));
  }
}

void mn_augment_describe(const mn_augment *a, char *buf, size_t len) {
  snprintf(buf, len, "crop_padding %d, flip %s, erasing %g", a->pad,
           a->flip ? "horizontal" : "none", a->erasing);
}
