/* mpi_tree_test.c: mn_tree_allreduce adds the ranks' buffers as ONE balanced binary tree
 * over the rank index, and every rank ends with the same bits.
 *
 * Rank r's buffer holds values of mixed magnitudes drawn from (r, i), so the order of the
 * additions shows in the last bits. Every rank rebuilds all ranks' buffers, adds them
 * pairwise level by level ((b0 + b1) + (b2 + b3)) and compares bit for bit, for buffer
 * lengths that halve unevenly (1, 3, 5, 17, ...). A plain left-to-right sum must differ
 * somewhere, or the test could not tell the tree from any other order. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "repro.h"
#include "rng.h"

static float value(int rank, size_t i) {
  const float u = mn_rng_uniform(7, (uint64_t)rank, i) - 0.5f;
  const float scale = (float)(1u << (mn_rng_below(7, 1000 + (uint64_t)rank, i, 20)));
  return u * scale;
}

int main(int argc, char **argv) {
  mn_world w;
  mn_world_init(&argc, &argv, &w);
  static const size_t sizes[] = {1, 2, 3, 5, 17, 4099, 100003};
  int failed = 0;
  size_t differs_from_sequential = 0;
  for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
    const size_t n = sizes[s];
    float *buf = malloc(n * sizeof *buf), *scratch = malloc((n / 2 + 1) * sizeof *scratch);
    float *tree = malloc((size_t)w.size * n * sizeof *tree);
    if (!buf || !scratch || !tree) mn_world_abort(&w, "out of memory");
    for (size_t i = 0; i < n; i++) buf[i] = value(w.rank, i);
    mn_tree_allreduce(&w, buf, n, scratch);
    /* the expected tree: leaves are the ranks' buffers, each level adds neighbours */
    for (int r = 0; r < w.size; r++)
      for (size_t i = 0; i < n; i++) tree[(size_t)r * n + i] = value(r, i);
    for (int d = 1; d < w.size; d <<= 1)
      for (int r = 0; r < w.size; r += 2 * d)
        for (size_t i = 0; i < n; i++) tree[(size_t)r * n + i] += tree[(size_t)(r + d) * n + i];
    for (size_t i = 0; i < n; i++) {
      if (memcmp(&buf[i], &tree[i], sizeof(float)) != 0 && failed++ < 5)
        fprintf(stderr, "rank %d, n %zu, element %zu: %.9g, the tree gives %.9g\n", w.rank, n, i,
                (double)buf[i], (double)tree[i]);
      float seq = 0.0f;
      for (int r = 0; r < w.size; r++) seq += value(r, i);
      differs_from_sequential += seq != tree[i];
    }
    free(buf), free(scratch), free(tree);
  }
  int any;
  MPI_Allreduce(&failed, &any, 1, MPI_INT, MPI_MAX, w.comm);
  if (w.size >= 4 && differs_from_sequential == 0) {
    fprintf(stderr,
            "rank %d: the tree equals a left-to-right sum everywhere: the test cannot "
            "tell the orders apart\n",
            w.rank);
    any = 1;
  }
  if (w.rank == 0)
    printf("tree allreduce: %d ranks: %s (%zu elements where a left-to-right sum differs)\n",
           w.size, any ? "MISMATCH" : "the fixed tree, bit for bit", differs_from_sequential);
  mn_world_finalize();
  return any;
}
