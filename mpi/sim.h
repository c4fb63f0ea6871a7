/* sim.h: mpinet-sim's timing-only mode, for world sizes whose ranks do not fit in the one
 * process that simulates them all (MPINET_SIM_TIMING_ONLY=1 under smpirun; README
 * "Simulating a larger cluster").
 *
 * - The buffers of one float per parameter (parameters, gradients, optimizer state) and
 *   the arena of layer outputs and their gradients (net.h) are SMPI shared memory (through
 *   mn_alloc_params): one copy for all ranks, so their values mean nothing and the run
 *   does not train; the step records are not read (no numeric checks; SIGTERM ends the
 *   simulation instead of asking it to stop at a step), and nothing is evaluated.
 * - Forward and backward are computed for real by rank 0 only, at every step (SMPI times
 *   them as usual); every other rank is charged rank 0's mean time for the same phase and
 *   rows, from its second step on (the first, cold one for the first step), instead of
 *   computing.
 * - Gradients are summed from the shared gradient buffer into another shared buffer, not in
 *   place: SimGrid 3.32 copies an in-place operand into a private, zero-filled buffer of
 *   every rank for the length of the collective and sends from that copy, while from a
 *   shared buffer it moves no bytes at all (the CNN's 13 MB at 1024 ranks: 13 GB of copies).
 * Everything else (reading the rows, the gradient scan, the communication, the optimizer)
 * runs on every rank as in a training run. In the normal build nothing of this exists. */
#ifndef MN_SIM_H
#define MN_SIM_H

#include <stdbool.h>
#include <stddef.h>

typedef enum { MN_SIM_FORWARD, MN_SIM_BACKWARD } mn_sim_phase;

#ifdef MPINET_SIMULATE
/* Turns the mode on where the environment asks for it, before the network is built;
 * returns whether it is on. */
bool mn_sim_timing_setup(int rank);
bool mn_sim_timing_on(void);
/* True: this rank was charged the phase's time and must not compute it. False: compute it,
 * then call mn_sim_computed. */
bool mn_sim_skip(mn_sim_phase phase, int rows);
void mn_sim_computed(void);
/* Where a sum of n floats goes instead of in place: a shared buffer in timing-only mode,
 * else NULL (sum in place). */
float *mn_sim_sum_target(size_t n);
#else
static inline bool mn_sim_timing_on(void) { return false; }
static inline bool mn_sim_skip(mn_sim_phase phase, int rows) {
  (void)phase, (void)rows;
  return false;
}
static inline void mn_sim_computed(void) {}
static inline float *mn_sim_sum_target(size_t n) {
  (void)n;
  return NULL;
}
#endif

#endif
