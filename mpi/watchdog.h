/* watchdog.h: job control for a rank: the phase it is in, a watchdog that turns a rank that
 * makes no progress into an abort naming that phase, and stop requests from signals.
 *
 * A rank blocked in a collective because a peer died, hangs or was SIGSTOPped would wait
 * forever; the watchdog thread sees that the phase counter has not moved for the configured
 * time, prints one line ("no progress for 300 s in gradient allreduce at step 1234") and ends
 * the process with MN_EXIT_WATCHDOG, whereupon mpirun (or srun) takes the rest of the job
 * down. The thread never calls MPI.
 * SIGTERM and SIGUSR1 (SLURM preemption, time limits; mpirun forwards SIGUSR1 to every rank,
 * while SIGTERM to mpirun itself kills the job) only set a flag: the trainer carries it in
 * the gradient allreduce, so all ranks stop after the same step, checkpoint and exit with
 * MN_EXIT_REQUEUE, even when the signal reached one rank only. State here is process-global
 * because signal handlers can reach nothing else. */
#ifndef MN_WATCHDOG_H
#define MN_WATCHDOG_H

#include <stdbool.h>

enum {
  MN_EXIT_WATCHDOG = 3, /* a rank made no progress for watchdog_seconds */
  MN_EXIT_REQUEUE = 75, /* stopped by a signal after writing a checkpoint: resume it */
};

typedef enum {
  MN_PHASE_STARTUP,
  MN_PHASE_DATA,
  MN_PHASE_FORWARD,
  MN_PHASE_BACKWARD,
  MN_PHASE_ALLREDUCE,
  MN_PHASE_OPTIMIZER,
  MN_PHASE_EVALUATION,
  MN_PHASE_CHECKPOINT,
} mn_phase;

/* Starts the watchdog thread (timeout_s <= 0: none). */
void mn_watchdog_start(int rank, double timeout_s);
/* Marks progress: this rank entered `phase` of `step`. Cheap (two atomic stores). */
void mn_watchdog_phase(mn_phase phase, long long step);
/* Marks progress within the current phase (evaluation chunks). */
void mn_watchdog_tick(void);
void mn_watchdog_stop(void);

/* Installs the SIGTERM / SIGUSR1 handlers. */
void mn_signals_install(void);
/* The signal that asked this rank to stop, or 0. */
int mn_stop_signal(void);

#endif
