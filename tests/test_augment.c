/* test_augment.c: [augment] (src/augment.h): a cropped, flipped and erased image checked pixel
 * by pixel against a hand-worked example; the same (seed, epoch, row) gives the same image
 * whatever batch the row is in; the draws' frequencies; the config's errors. */
#include <math.h>
#include <string.h>

#include "augment.h"
#include "check.h"
#include "config.h"

static void hand_worked(void) {
  /* a 1x4x4 image 1..16 whose border (the normalised raw 0) reads -1 */
  mn_augment a = {.on = true, .pad = 1, .flip = true, .erasing = 1.0, .c = 1, .h = 4, .w = 4};
  const mn_augment_draw d = mn_augment_choose(&a, 7, 3, 0);
  CHECK(d.dy == -1 && d.dx == -1 && d.flip && d.ey == 3 && d.ex == 1 && d.eh == 1 && d.ew == 2,
        "seed 7, epoch 3, row 0 drew dy %d dx %d flip %d, erasing (%d, %d) %dx%d", d.dy, d.dx,
        d.flip, d.ey, d.ex, d.eh, d.ew);
  /* By hand, as torchvision does it: pad to 6x6 with the border, crop the 4x4 at (dy + 1,
   * dx + 1) = (0, 0): rows -1..2, columns -1..2 of the image; flip each row; zero the 1x2
   * rectangle at row 3, column 1. */
  const float want[16] = {-1, -1, -1, -1, 3, 2, 1, -1, 7, 6, 5, -1, 11, 0, 0, -1};
  float x[16], pad[16], scratch[16];
  for (int i = 0; i < 16; i++) x[i] = (float)(i + 1), pad[i] = -1.0f;
  const uint64_t row = 0;
  mn_augment_apply(&a, 7, 3, &row, 1, x, pad, scratch);
  for (int i = 0; i < 16; i++)
    CHECK(x[i] == want[i], "pixel (%d, %d): %g, by hand %g", i / 4, i % 4, x[i], want[i]);
}

static void same_image_in_any_batch(void) {
  mn_augment a = {.on = true, .pad = 4, .flip = true, .erasing = 0.5, .c = 2, .h = 28, .w = 28};
  enum { LEN = 2 * 28 * 28 };
  static float batch[3 * LEN], alone[LEN], pad[LEN], scratch[LEN];
  for (int i = 0; i < LEN; i++) pad[i] = -0.5f;
  for (int i = 0; i < 3 * LEN; i++) batch[i] = (float)(i % LEN) * 0.01f;
  memcpy(alone, batch, sizeof alone);
  const uint64_t rows[3] = {17, 4242, 99};
  mn_augment_apply(&a, 11, 5, rows, 3, batch, pad, scratch);     /* row 4242 second in a batch */
  mn_augment_apply(&a, 11, 5, rows + 1, 1, alone, pad, scratch); /* and alone, as another rank */
  CHECK(memcmp(batch + LEN, alone, sizeof alone) == 0, "row 4242 differs between batches");
  int differ = 0; /* another epoch draws again */
  for (uint64_t r = 0; r < 100; r++) {
    const mn_augment_draw p = mn_augment_choose(&a, 11, 5, r), q = mn_augment_choose(&a, 11, 6, r);
    differ += p.dy != q.dy || p.dx != q.dx || p.flip != q.flip || p.ey != q.ey;
  }
  CHECK(differ > 90, "epochs 5 and 6 drew alike for %d of 100 rows", 100 - differ);
}

static void frequencies(void) {
  mn_augment a = {.on = true, .pad = 4, .flip = true, .erasing = 0.5, .c = 1, .h = 28, .w = 28};
  enum { N = 90000 };
  long dy[9] = {0}, flips = 0, erased = 0;
  double area_min = 1.0, area_max = 0.0;
  for (uint64_t r = 0; r < N; r++) {
    const mn_augment_draw d = mn_augment_choose(&a, 1, 0, r);
    CHECK(d.dy >= -4 && d.dy <= 4 && d.dx >= -4 && d.dx <= 4, "row %llu: offset (%d, %d)",
          (unsigned long long)r, d.dy, d.dx);
    if (d.dy < -4 || d.dy > 4) continue;
    dy[d.dy + 4]++, flips += d.flip;
    if (d.eh > 0) {
      erased++;
      const double f = (double)d.eh * d.ew / (28.0 * 28.0);
      area_min = f < area_min ? f : area_min, area_max = f > area_max ? f : area_max;
      CHECK(d.ey + d.eh <= 28 && d.ex + d.ew <= 28, "row %llu: erasing outside",
            (unsigned long long)r);
    }
  }
  /* binomial standard deviations: 1/9 of N: 94; half of N: 150 */
  for (int k = 0; k < 9; k++)
    CHECK(fabs((double)dy[k] - N / 9.0) < 5 * 94, "dy %d drawn %ld times of %d", k - 4, dy[k], N);
  CHECK(fabs((double)flips - N / 2.0) < 5 * 150, "%ld flips of %d", flips, N);
  CHECK(fabs((double)erased - N / 2.0) < 5 * 150, "%ld erased of %d", erased, N);
  /* torchvision's scale (0.02, 0.33), widened by the rounding of each side to whole pixels */
  CHECK(area_min >= 0.01 && area_min < 0.03 && area_max > 0.3 && area_max < 0.40,
        "erased areas %.3f to %.3f of the image", area_min, area_max);
}

static int parse(const char *text, mn_shape shape, mn_augment *a, mn_err *err) {
  mn_config cfg;
  if (mn_config_parse(&cfg, "job.ini", text, err) != 0) return -2;
  const int rc = mn_augment_parse(a, mn_config_section(&cfg, "augment"), shape, err);
  mn_config_free(&cfg);
  return rc;
}

static void config(void) {
  mn_augment a;
  mn_err err;
  const mn_shape img = {3, {1, 28, 28}}, flat = {1, {784}};
  CHECK(parse("[augment]\ncrop_padding = 4\nflip = horizontal\nerasing = 0.25\n", img, &a, &err) ==
                0 &&
            a.on && a.pad == 4 && a.flip && a.erasing == 0.25 && a.h == 28,
        "a full [augment] section");
  CHECK(parse("[train]\nlr = 0.1\n", flat, &a, &err) == 0 && !a.on, "no [augment]: off");
  CHECK(
      parse("[augment]\nflip = horizontal\n", flat, &a, &err) == -1 &&
          strstr(err.msg, "job.ini:1: [augment]") &&
          strstr(err.msg, "augmentation is for images (C, H, W), and the data's samples are (784)"),
      "flat samples: %s", err.msg);
  CHECK(parse("[augment]\nflip = vertical\n", img, &a, &err) == -1 && strstr(err.msg, "flip"),
        "flip = vertical: %s", err.msg);
  CHECK(parse("[augment]\nerasing = 1.5\n", img, &a, &err) == -1 && strstr(err.msg, "erasing"),
        "erasing = 1.5: %s", err.msg);
}

int main(void) {
  hand_worked();
  same_image_in_any_batch();
  frequencies();
  config();
  return check_report("test_augment");
}
