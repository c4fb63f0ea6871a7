/* world.h: MPI start-up and the error policy every rank follows.
 *
 * Two ways to fail, and no third:
 *  - a failure every rank can reach together (bad config, missing file, a rank that could
 *    not load its shard) goes through mn_world_agree(): all ranks learn that someone failed,
 *    the lowest failing rank prints its one line, and everyone exits 1 in step;
 *  - a failure only one rank sees in the middle of collectives (I/O error while rank 0
 *    writes a checkpoint) goes through mn_world_abort(): one line, then MPI_Abort, which
 *    takes the whole job down instead of leaving peers waiting forever. */
#ifndef MN_WORLD_H
#define MN_WORLD_H

#include <mpi.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

typedef struct {
  MPI_Comm comm;
  int rank, size;
  int local_size; /* ranks on this node (sharing memory with this one) */
  int cpus;        /* CPUs this process may run on (its affinity mask) */
  int cpu_sharing; /* ranks of this node that run on those CPUs, this one included */
} mn_world;

void mn_world_init(int *argc, char ***argv, mn_world *w);
void mn_world_finalize(void);
/* Collective. `rc` is this rank's result (0 ok); returns 0 iff every rank passed 0. On
 * failure the lowest failing rank prints "mpinet: error: <msg>". */
int mn_world_agree(const mn_world *w, int rc, const mn_err *err);
/* Collective: the lowest rank whose `mine` differs from rank 0's, or -1 if all agree (every
 * rank gets the same answer). */
int mn_world_first_differing(const mn_world *w, uint64_t mine);
/* One line on stderr, then MPI_Abort of the whole job. */
_Noreturn void mn_world_abort(const mn_world *w, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Every rank receives rank 0's NUL-terminated text (rank 0 passes ownership of its malloc'ed
 * copy, or NULL after printing why it has none: then every rank gets NULL). Callers free. */
char *mn_world_bcast_text(const mn_world *w, char *text);
/* Rank 0 reads a file and every rank receives its bytes (NUL-terminated, caller frees);
 * NULL on every rank if rank 0 could not read it (rank 0 prints why). */
char *mn_world_bcast_file(const mn_world *w, const char *path, size_t max_bytes);

#endif
