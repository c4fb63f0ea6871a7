/* mpi_broadcast_test.c: after start-up every rank's parameters are bit-identical.
 *
 * Each rank first initialises its network with a DIFFERENT seed (its rank), so the ranks
 * really disagree; after mn_bcast_floats() from rank 0 all hashes must equal rank 0's
 * seed-0 hash. Run at several world sizes by CTest. Also the average of batch-norm
 * statistics over ranks, plain and weighted by the rows each rank saw. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "grad_sync.h"
#include "net.h"

int main(int argc, char **argv) {
  mn_world w;
  mn_world_init(&argc, &argv, &w);
  const char *text = "[layer]\ntype = dense\nunits = 64\nactivation = relu\n"
                     "[layer]\ntype = dense\nunits = 10\n";
  mn_config cfg;
  mn_net net, ref;
  mn_err err;
  if (mn_config_parse(&cfg, "bcast.ini", text, &err) != 0 ||
      mn_net_create(&net, &cfg, (mn_shape){1, {100}}, 10, MN_LOSS_CROSS_ENTROPY, 1, &err) != 0 ||
      mn_net_create(&ref, &cfg, (mn_shape){1, {100}}, 10, MN_LOSS_CROSS_ENTROPY, 1, &err) != 0)
    mn_world_abort(&w, "%s", err.msg);
  mn_net_init_params(&net, (uint64_t)w.rank);
  mn_net_init_params(&ref, 0);
  uint64_t before = mn_net_param_hash(&net), expect = mn_net_param_hash(&ref);
  mn_bcast_floats(&w, net.params, net.nparams);
  uint64_t after = mn_net_param_hash(&net);
  uint64_t *all = malloc((size_t)w.size * sizeof *all);
  MPI_Gather(&after, 1, MPI_UINT64_T, all, 1, MPI_UINT64_T, 0, w.comm);
  int failed = 0;
  if (w.rank != 0 && before == expect) {
    fprintf(stderr, "rank %d: differently seeded parameters already equal rank 0's\n", w.rank);
    failed = 1;
  }
  if (w.rank == 0)
    for (int r = 0; r < w.size; r++)
      if (all[r] != expect) {
        fprintf(stderr, "rank %d: hash %016" PRIx64 " != rank 0's %016" PRIx64 "\n", r, all[r],
                expect);
        failed = 1;
      }
  /* The running statistics' average: plain when the ranks' weights are equal, else each
   * rank's values weigh as its weight. Rank r holds r + 1 (exact in floats). */
  const double n = w.size;
  for (int weighted = 0; weighted < 2; weighted++) {
    float v[3] = {(float)(w.rank + 1), (float)(w.rank + 1), -(float)(w.rank + 1)};
    mn_average_floats(&w, v, 3, weighted ? w.rank + 1 : 5);
    const double want = weighted ? (n + 1) * (2 * n + 1) / 6 / ((n + 1) / 2) : (n + 1) / 2;
    for (int i = 0; i < 3; i++)
      if (fabs(fabs(v[i]) - want) > 1e-6 * want) {
        fprintf(stderr, "rank %d: %s average %.9g, want %.9g\n", w.rank,
                weighted ? "weighted" : "plain", (double)v[i], want);
        failed = 1;
      }
  }
  int any;
  MPI_Allreduce(&failed, &any, 1, MPI_INT, MPI_MAX, w.comm);
  if (w.rank == 0)
    printf("broadcast: %d ranks, %zu parameters: %s\n", w.size, net.nparams,
           any ? "MISMATCH" : "bit-identical");
  free(all);
  mn_net_destroy(&net);
  mn_net_destroy(&ref);
  mn_config_free(&cfg);
  mn_world_finalize();
  return any;
}
