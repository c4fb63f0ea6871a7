/* linkprobe.c: a link as MPI sees it, between ranks 0 and 1 (jobs/scaling/validate.sh, and
 * for your own cluster's platform file): the one-way latency of 1-byte messages (half the
 * ping-pong round trip, median of 200), the bandwidth of 4 MB messages sent one way (10 in
 * flight, median of 5 rounds), and the bandwidth each way when both ranks send at once, as
 * an allreduce between two hosts does (on a shaped link the other way's acknowledgements
 * queue behind data: jobs/scaling/platforms/README.md). Prints "latency_us
 * bandwidth_MBps both_ways_MBps", and with an argument N also the milliseconds of an
 * MPI_Allreduce of N floats (median of 5). */
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
  enum { PINGS = 200, ROUNDS = 5, INFLIGHT = 10, SIZE = 4 << 20 };
  char *buf = calloc(INFLIGHT, SIZE), byte = 0;
  double lat[PINGS], bw[ROUNDS];
  for (int i = 0; i < PINGS; i++) {
    MPI_Barrier(MPI_COMM_WORLD);
    const double t0 = MPI_Wtime();
    if (rank == 0) {
      MPI_Send(&byte, 1, MPI_CHAR, 1, 0, MPI_COMM_WORLD);
      MPI_Recv(&byte, 1, MPI_CHAR, 1, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    } else if (rank == 1) {
      MPI_Recv(&byte, 1, MPI_CHAR, 0, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
      MPI_Send(&byte, 1, MPI_CHAR, 0, 0, MPI_COMM_WORLD);
    }
    lat[i] = (MPI_Wtime() - t0) / 2;
  }
  for (int r = 0; r < ROUNDS; r++) {
    MPI_Request req[INFLIGHT];
    MPI_Barrier(MPI_COMM_WORLD);
    const double t0 = MPI_Wtime();
    for (int k = 0; k < INFLIGHT; k++) {
      if (rank == 0) MPI_Isend(buf + (size_t)k * SIZE, SIZE, MPI_CHAR, 1, 1, MPI_COMM_WORLD, &req[k]);
      if (rank == 1) MPI_Irecv(buf + (size_t)k * SIZE, SIZE, MPI_CHAR, 0, 1, MPI_COMM_WORLD, &req[k]);
    }
    if (rank <= 1) MPI_Waitall(INFLIGHT, req, MPI_STATUSES_IGNORE);
    if (rank == 1) MPI_Send(&byte, 1, MPI_CHAR, 0, 2, MPI_COMM_WORLD); /* all arrived */
    if (rank == 0) MPI_Recv(&byte, 1, MPI_CHAR, 1, 2, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    bw[r] = (double)INFLIGHT * SIZE / (MPI_Wtime() - t0) / 1e6;
  }
  double both[ROUNDS];
  for (int r = 0; r < ROUNDS; r++) { /* both ways at once: each rank sends and receives */
    MPI_Request req[2 * INFLIGHT];
    int nreq = 0;
    MPI_Barrier(MPI_COMM_WORLD);
    const double t0 = MPI_Wtime();
    for (int k = 0; k < INFLIGHT / 2 && rank <= 1; k++) {
      MPI_Irecv(buf + (size_t)(2 * k) * SIZE, SIZE, MPI_CHAR, 1 - rank, 3, MPI_COMM_WORLD,
                &req[nreq++]);
      MPI_Isend(buf + (size_t)(2 * k + 1) * SIZE, SIZE, MPI_CHAR, 1 - rank, 3, MPI_COMM_WORLD,
                &req[nreq++]);
    }
    MPI_Waitall(nreq, req, MPI_STATUSES_IGNORE);
    double t = MPI_Wtime() - t0;
    MPI_Allreduce(MPI_IN_PLACE, &t, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    both[r] = (double)(INFLIGHT / 2) * SIZE / t / 1e6;
  }
  /* optional: the time of an MPI_Allreduce (MPI_SUM) of argv[1] floats, median of 5 */
  double ar[ROUNDS] = {0};
  const long nfl = argc > 1 ? atol(argv[1]) : 0;
  float *g = nfl > 0 ? calloc((size_t)nfl, sizeof *g) : NULL;
  for (int r = 0; g && r < ROUNDS; r++) {
    MPI_Barrier(MPI_COMM_WORLD);
    const double t0 = MPI_Wtime();
    MPI_Allreduce(MPI_IN_PLACE, g, (int)nfl, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    ar[r] = MPI_Wtime() - t0;
  }
  free(g);
  qsort(ar, ROUNDS, sizeof *ar, by_value);
  qsort(lat, PINGS, sizeof *lat, by_value);
  qsort(bw, ROUNDS, sizeof *bw, by_value);
  qsort(both, ROUNDS, sizeof *both, by_value);
  if (rank == 0 && nfl > 0)
    printf("%.1f %.2f %.2f %.2f\n", lat[PINGS / 2] * 1e6, bw[ROUNDS / 2], both[ROUNDS / 2],
           ar[ROUNDS / 2] * 1e3);
  else if (rank == 0)
    printf("%.1f %.2f %.2f\n", lat[PINGS / 2] * 1e6, bw[ROUNDS / 2], both[ROUNDS / 2]);
  free(buf);
  MPI_Finalize();
  return 0;
}
