/* mpi_node_reduce_test.c: mn_node_reduce sums the ranks' segments in rank order, bit for bit,
 * whoever adds which chunk, over many reductions in a row.
 *
 * Each rank writes its segment in pieces, publishing each (as backward does), with a delay
 * that depends on the rank and the round, so that in some rounds one rank is late and the
 * others add nearly every chunk, and in others all race for them. After every reduction all
 * ranks compare the result with ((s0 + s1) + s2) + ... computed locally from the values
 * every rank can rebuild, and then overwrite their segments at once for the next round: a
 * chunk added from a segment already overwritten, or added twice, or not at all, shows.
 * Values of mixed magnitudes make the order of additions show in the last bits; at 3+
 * ranks some element must differ from s0 + (s1 + s2), or the test could not tell.
 * Under MPINET_TEST_NODE_RANKS=k (consecutive groups of k ranks play nodes) the nodes' sums
 * are then summed across the 2 "nodes": want (s0 + ... + s(k-1)) + (sk + ...), and the
 * other order is ((s0 + s1) + s2) + ...
 * The late rank's lateness also shows in waited_s, and that check does not depend on who
 * gets a CPU when: before its last piece the late rank waits for a message from each other
 * rank of its node, which each sends right after publishing its whole segment (its
 * arrival), then sleeps 2 ms and publishes. So in every round with a late rank, each other
 * rank of its node waited at least 2 ms for it, and the late rank waited for nobody
 * (waited_s exactly 0), however the ranks are scheduled. */
#define _DEFAULT_SOURCE /* usleep */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "node_reduce.h"
#include "rng.h"

static float value(int rank, size_t i, int round) {
  const uint64_t stream = (uint64_t)round * 64 + (uint64_t)rank;
  const float u = mn_rng_uniform(11, stream, i) - 0.5f;
  return u * (float)(1u << mn_rng_below(11, 1000 + stream, i, 20));
}

int main(int argc, char **argv) {
  mn_world w;
  mn_world_init(&argc, &argv, &w);
  static const size_t sizes[] = {1, 17, 16384, 16385, 100003};
  static const size_t chunks[] = {16, 1000, 16384};
  const int rounds = 12;
  const char *hook = getenv("MPINET_TEST_NODE_RANKS");
  const int group = hook ? atoi(hook) : w.size; /* ranks per "node" */
  if (group < 2 || w.size % group != 0 || w.size / group > 2)
    mn_world_abort(&w, "MPINET_TEST_NODE_RANKS: want 1 or 2 nodes of 2+ ranks");
  int failed = 0;
  size_t order_shows = 0;
  for (size_t si = 0; si < sizeof sizes / sizeof *sizes; si++)
    for (size_t ci = 0; ci < sizeof chunks / sizeof *chunks; ci++) {
      const size_t n = sizes[si];
      const char *why;
      if (!mn_node_reduce_possible(&w, &why)) mn_world_abort(&w, "no shared memory: %s", why);
      mn_node_reduce r;
      mn_err err;
      if (mn_node_reduce_init(&r, &w, n, chunks[ci], &err) != 0) mn_world_abort(&w, "%s", err.msg);
      float *own = mn_node_reduce_own(&r);
      for (int round = 0; round < rounds; round++) {
        const int late = round % (w.size + 1); /* == size: nobody is late */
        const bool late_here = late < w.size && late / group == w.rank / group;
        const size_t pieces = 1 + (size_t)(round % 4);
        MPI_Request sent = MPI_REQUEST_NULL;
        for (size_t p = 0; p < pieces; p++) {
          const size_t lo = n * p / pieces, hi = n * (p + 1) / pieces;
          for (size_t i = lo; i < hi; i++) own[i] = value(w.rank, i, round);
          if (w.rank == late && p + 1 == pieces) /* every other rank of the node has arrived */
            for (int q = late / group * group; q < (late / group + 1) * group; q++)
              if (q != late) MPI_Recv(NULL, 0, MPI_BYTE, q, round, w.comm, MPI_STATUS_IGNORE);
          if (w.rank == late) usleep(2000);
          mn_node_reduce_ready(&r, hi);
          if (late_here && w.rank != late && p + 1 == pieces) /* arrived */
            MPI_Isend(NULL, 0, MPI_BYTE, late, round, w.comm, &sent);
        }
        mn_node_reduce_finish(&r);
        MPI_Wait(&sent, MPI_STATUS_IGNORE);
        if (w.rank == late && r.waited_s != 0.0 && failed++ < 5)
          fprintf(stderr, "rank %d, n %zu, chunk %zu, round %d: waited %.6f s when late itself\n",
                  w.rank, n, chunks[ci], round, r.waited_s);
        if (late_here && w.rank != late && r.waited_s < 2e-3 - 1e-12 /* ns to s rounding */ &&
            failed++ < 5)
          fprintf(stderr,
                  "rank %d, n %zu, chunk %zu, round %d: waited %.6f s for rank %d, which "
                  "arrived 2 ms or more after it\n",
                  w.rank, n, chunks[ci], round, r.waited_s, late);
        for (size_t i = 0; i < n; i++) {
          float want = 0.0f;
          for (int first = 0; first < w.size; first += group) { /* each node in rank order */
            float node = value(first, i, round);
            for (int q = first + 1; q < first + group; q++) node += value(q, i, round);
            want = first == 0 ? node : want + node;
          }
          if (memcmp(&want, &r.result[i], sizeof want) != 0 && failed++ < 5)
            fprintf(stderr, "rank %d, n %zu, chunk %zu, round %d, element %zu: %.9g, want %.9g\n",
                    w.rank, n, chunks[ci], round, i, (double)r.result[i], (double)want);
          if (w.size >= 3) {
            float other = 0.0f; /* one node: s0 + (s1 + ...); two: ((s0 + s1) + s2) + ... */
            if (group == w.size) {
              for (int q = w.size - 1; q >= 1; q--) other += value(q, i, round);
              other = value(0, i, round) + other;
            } else {
              for (int q = 0; q < w.size; q++) other += value(q, i, round);
            }
            order_shows += other != want;
          }
        }
      }
      mn_node_reduce_free(&r);
    }
  int any;
  MPI_Allreduce(&failed, &any, 1, MPI_INT, MPI_MAX, w.comm);
  if (w.size >= 3 && order_shows == 0) {
    fprintf(stderr, "rank %d: no element shows the order of the additions\n", w.rank);
    any = 1;
  }
  if (w.rank == 0)
    printf("%s: %d ranks on %d node(s), %d rounds for each of %zu sizes x %zu chunk sizes\n",
           any ? "FAILED" : "ok", w.size, w.size / group, rounds, sizeof sizes / sizeof *sizes,
           sizeof chunks / sizeof *chunks);
  mn_world_finalize();
  return any ? 1 : 0;
}
