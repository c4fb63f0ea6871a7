/* error.c: error messages that say where, and allocation that refuses overflowing sizes. */
#ifndef _DEFAULT_SOURCE /* (smpicc defines it) */
#define _DEFAULT_SOURCE /* madvise */
#endif
#include "error.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int mn_fail(mn_err *err, const char *fmt, ...) {
  if (err) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
  }
  return -1;
}

int mn_fail_prefix(mn_err *err, const char *fmt, ...) {
  if (err) {
    char prefix[512];
    char old[sizeof err->msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, err->msg, sizeof old);
    snprintf(err->msg, sizeof err->msg, "%s: %s", prefix, old);
  }
  return -1;
}

int mn_mul_size(size_t a, size_t b, size_t *out) {
  if (a != 0 && b > SIZE_MAX / a) return -1;
  *out = a * b;
  return 0;
}

void *mn_alloc(size_t n, size_t size, const char *what, mn_err *err) {
  size_t bytes;
  if (mn_mul_size(n, size, &bytes) != 0) {
    mn_fail(err, "%s: size overflows (%zu x %zu bytes)", what, n, size);
    return NULL;
  }
  void *p = calloc(bytes ? bytes : 1, 1);
  if (!p) mn_fail(err, "%s: out of memory (%zu bytes)", what, bytes);
  return p;
}

/* (One per process; in SMPI, where globals are per rank, one per simulated rank.) */
static void *(*share_params)(size_t bytes);

void mn_share_params(void *(*alloc)(size_t bytes)) { share_params = alloc; }

void *mn_alloc_params(size_t n, size_t size, const char *what, mn_err *err) {
  size_t bytes;
  if (!share_params || mn_mul_size(n, size, &bytes) != 0) return mn_alloc(n, size, what, err);
  void *p = share_params(bytes ? bytes : 1);
  if (!p) mn_fail(err, "%s: out of shared memory (%zu bytes)", what, bytes);
  return p;
}

void mn_free_params(void *p) {
  if (!share_params) free(p);
}

void mn_release_pages(void *p, size_t bytes) {
#ifdef MADV_DONTNEED
  const uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
  const uintptr_t lo = ((uintptr_t)p + page - 1) & ~(page - 1),
                  hi = ((uintptr_t)p + bytes) & ~(page - 1);
  if (hi > lo) madvise((void *)lo, hi - lo, MADV_DONTNEED);
#endif
}

bool mn_first_rank_env(void) {
  static const char *const vars[] = {"OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK"};
  for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
    const char *r = getenv(vars[i]);
    if (r) return strcmp(r, "0") == 0;
  }
  return true;
}
