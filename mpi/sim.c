/* sim.c: mpinet-sim's timing-only mode (sim.h). Compiled into mpinet-sim only. */
#ifdef MPINET_SIMULATE
#include "sim.h"

#include <signal.h>
#include <smpi/smpi.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#if defined(__SSE__)
#include <xmmintrin.h>
#endif
#include "error.h"

enum { KEYS = 64 };

/* One for all simulated ranks (SMPI shares it by name): rank 0's measured times. */
typedef struct {
  struct {
    int phase, rows;
    double cold;     /* rank 0's first computation (or, before it, the first rank's) */
    double warm_sum; /* rank 0's later ones */
    long warm_n;
    bool have_cold, rank0_ran;
  } key[KEYS];
  int nkeys;
} sim_table;

/* Per simulated rank (SMPI gives each rank its own globals). */
static bool on;
static int my_rank;
static sim_table *table;
static int measuring = -1; /* the key being computed, or -1 */
static double t_begin;

/* SMPI times computation in thread CPU time; so does this. */
static double cpu_now(void) {
  struct timespec t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* The k-th parameter buffer of every rank is the same memory (the key is the count). */
static void *shared_params(size_t bytes) {
  static int count;
  return smpi_shared_malloc(bytes, "mpinet parameter buffer", ++count);
}

bool mn_sim_timing_setup(int rank) {
  const char *v = getenv("MPINET_SIM_TIMING_ONLY");
  on = v && *v && strcmp(v, "0") != 0;
  my_rank = rank;
  if (!on) return false;
  if (smpi_shared_known_call("mpinet", "timing table"))
    table = smpi_shared_get_call("mpinet", "timing table");
  else
    table = smpi_shared_set_call("mpinet", "timing table", calloc(1, sizeof *table));
  if (!table) return on = false;
  mn_share_params(shared_params);
  /* the step records, which carry stop requests, are not read in this mode: SIGTERM and
   * SIGUSR1 end the simulation as they end any program */
  signal(SIGTERM, SIG_DFL);
  signal(SIGUSR1, SIG_DFL);
#if defined(__SSE__)
  /* the shared buffers hold whatever every rank's updates left: no denormal may slow rank
   * 0's measured arithmetic down (flush to zero, denormals are zero) */
  _mm_setcsr(_mm_getcsr() | 0x8040);
#endif
  return true;
}

bool mn_sim_timing_on(void) { return on; }

float *mn_sim_sum_target(size_t n) {
  static float *target;
  static size_t target_n;
  static int grown; /* every rank grows it at the same call: the same key (as shared_params) */
  if (!on) return NULL;
  if (n > target_n) {
    target = smpi_shared_malloc(n * sizeof(float), "mpinet sum target", ++grown);
    target_n = n;
  }
  return target;
}

bool mn_sim_skip(mn_sim_phase phase, int rows) {
  if (!on) return false;
  int k = 0;
  while (k < table->nkeys && (table->key[k].phase != (int)phase || table->key[k].rows != rows)) k++;
  if (k == table->nkeys && k < KEYS) {
    table->key[k].phase = (int)phase, table->key[k].rows = rows;
    table->nkeys++;
  }
  if (k == KEYS) return false; /* (more row counts than keys: everyone computes) */
  if (my_rank != 0 && (table->key[k].warm_n > 0 || table->key[k].have_cold)) {
    const double t = table->key[k].warm_n > 0
                         ? table->key[k].warm_sum / (double)table->key[k].warm_n
                         : table->key[k].cold;
    smpi_bench_end(); /* (what ran since the last MPI call is charged first, as usual) */
    smpi_execute(t);  /* charged as SMPI charges measured time: at smpi/host-speed */
    smpi_bench_begin();
    return true;
  }
  measuring = k;
  t_begin = cpu_now();
  return false;
}

void mn_sim_computed(void) {
  if (!on || measuring < 0) return;
  const double dt = cpu_now() - t_begin;
  if (my_rank == 0 && table->key[measuring].rank0_ran) {
    table->key[measuring].warm_sum += dt;
    table->key[measuring].warm_n++;
  } else if (my_rank == 0 || !table->key[measuring].have_cold) {
    table->key[measuring].cold = dt;
    table->key[measuring].have_cold = true;
  }
  if (my_rank == 0) table->key[measuring].rank0_ran = true;
  measuring = -1;
}
#endif
