/* bucket_probe.c: the time of one blocking MPI_Allreduce of each size given (floats), the
 * slowest rank's, median of 3 (jobs/scaling/buckets.sh runs it under smpirun, where the
 * buffers are SMPI's shared memory: all the simulated ranks fit in one process; built with
 * mpicc it measures a real cluster the same way). Prints one line per size: "floats ms". */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

static int by_value(const void *a, const void *b) {
  const double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  int rank;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  size_t most = 1;
  for (int i = 1; i < argc; i++)
    if ((size_t)atoll(argv[i]) > most) most = (size_t)atoll(argv[i]);
#ifdef SMPI_SHARED_MALLOC
  float *buf = SMPI_SHARED_MALLOC(most * sizeof(float)); /* (what it holds does not matter) */
#else
  float *buf = calloc(most, sizeof(float));
#endif
  for (int i = 1; i < argc; i++) {
    const int n = atoi(argv[i]);
    double t[3];
    for (int r = 0; r < 3; r++) {
      MPI_Barrier(MPI_COMM_WORLD);
      const double t0 = MPI_Wtime();
      MPI_Allreduce(MPI_IN_PLACE, buf, n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
      t[r] = MPI_Wtime() - t0;
      MPI_Allreduce(MPI_IN_PLACE, &t[r], 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    }
    qsort(t, 3, sizeof t[0], by_value);
    if (rank == 0) printf("%d %.6f\n", n, 1e3 * t[1]);
  }
  MPI_Finalize();
  return 0;
}
