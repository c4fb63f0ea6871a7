/* error.h: how a function in the core says what went wrong.
 *
 * Functions that can fail take an `mn_err *` and return -1 after filling it with one line
 * (`<file or key>: <what> (<why>)`); they return 0 on success. Only the top (the CLI or the
 * MPI layer) decides whether to exit or abort, so the core never calls exit(). */
#ifndef MN_ERROR_H
#define MN_ERROR_H

#include <stdbool.h>
#include <stddef.h>

typedef struct {
  char msg[1024];
} mn_err;

/* Fills err with a printf-style message and returns -1, so callers can `return mn_fail(...)`. */
int mn_fail(mn_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Prefixes an existing message: "context: old message". Returns -1. */
int mn_fail_prefix(mn_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Overflow-checked size arithmetic for anything sized by a file or a config value. */
int mn_mul_size(size_t a, size_t b, size_t *out);

/* malloc/calloc that report what they were for. */
void *mn_alloc(size_t n, size_t size, const char *what, mn_err *err);
/* Gives the whole pages inside [p, p + bytes) back to the system (madvise); they read as
 * zeros when next touched. The memory stays allocated. */
void mn_release_pages(void *p, size_t bytes);

/* Buffers of one float per parameter (parameters, gradients, optimizer state) and the
 * network's arena of layer outputs and gradients, the largest a rank holds. mn_alloc and free, unless mn_share_params gave an allocator: mpinet-sim's
 * timing-only mode (mpi/sim.h) shares them between all the ranks it simulates; shared
 * buffers are never freed. */
void *mn_alloc_params(size_t n, size_t size, const char *what, mn_err *err);
void mn_free_params(void *p);
void mn_share_params(void *(*alloc)(size_t bytes)); /* NULL: back to mn_alloc */

/* False in a process that an MPI launcher started as a rank other than 0 (Open MPI's,
 * PMIx's or PMI's rank variable): usage errors found before MPI_Init print once per job. */
bool mn_first_rank_env(void);

#endif
