/* report.c: what a training run tells its user after every epoch: evaluation on the test
 * split, a check that every replica holds the same parameters, one console line and one
 * metrics.jsonl row with the step-time split. */
#define _GNU_SOURCE
#include <dirent.h>
#include <hdf5.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "evaluate.h"
#include "h5util.h"
#include "trainer.h"
#include "watchdog.h"

/* Checks collectively that every rank holds bit-identical parameters. */
static int check_replicas(trainer *tr, mn_err *err) {
  const int bad = mn_world_first_differing(&tr->w, mn_net_param_hash(&tr->net));
  if (bad >= 0)
    return mn_fail(err, "replicas diverged: rank %d's parameters differ from rank 0's", bad);
  return 0;
}

static const char *const phase_names[PHASES] = {"data", "forward", "backward", "comm", "optimizer"};

double mn_unix_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Peak resident set size of this process, in MiB. */
double mn_peak_rss_mb(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)ru.ru_maxrss / 1024.0;
}

/* What a long run must not accumulate (the soak job watches these): resident memory now, open
 * file descriptors and open HDF5 objects of this process. */
/* Proportional set size: shared pages divided among the processes that map them, so the
 * sum over a node's ranks is the node's memory (RSS counts shared rows in every rank). */
static double pss_mb(void) {
  FILE *f = fopen("/proc/self/smaps_rollup", "r");
  char line[256];
  double kb = 0.0;
  while (f && fgets(line, sizeof line, f))
    if (sscanf(line, "Pss: %lf kB", &kb) == 1) break;
  if (f) fclose(f);
  return kb / 1024.0;
}

static void resources(double *rss_mb, double *fds, double *h5_objects) {
  long pages = 0, resident = 0;
  FILE *f = fopen("/proc/self/statm", "r");
  if (f) {
    if (fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
    fclose(f);
  }
  *rss_mb = (double)resident * (double)sysconf(_SC_PAGESIZE) / (1024.0 * 1024.0);
  *fds = 0;
  DIR *d = opendir("/proc/self/fd");
  if (d) {
    while (readdir(d)) *fds += 1;
    closedir(d);
    *fds -= 3; /* ".", ".." and the descriptor of this very listing */
  }
  mn_h5_lock(); /* a stream reader may be in HDF5 */
  *h5_objects = (double)H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL);
  mn_h5_unlock();
}

/* JSON has no NaN: a value that does not exist (accuracy of a regression) is null. Exact
 * (17 digits: every bit of the double) in reproducible mode, so that runs can be diffed. */
static void json_number(char *buf, size_t len, double v, bool exact) {
  if (isfinite(v))
    snprintf(buf, len, exact ? "%.17g" : "%.6g", v);
  else
    snprintf(buf, len, "null");
}

/* Evaluates, reduces train and test sums in one allreduce, reports on rank 0. */
int mn_trainer_report(trainer *tr, long long epoch, long long step, const train_sums *ts,
                      double train_seconds, long long samples) {
  mn_watchdog_phase(MN_PHASE_EVALUATION, step - 1);
  /* Batch norm running statistics are per rank (unless sync = true); evaluation and
   * checkpoints use their average, so every rank evaluates the same model. (Reproducible
   * mode updates them identically on every rank; an average would only round them.) With
   * a global batch that the world size does not divide, ranks see different numbers of
   * rows: each rank's statistics weigh as the rows it trained on since the last average. */
  if (!tr->s.reproducible) mn_average_floats(&tr->w, tr->net.state, tr->net.nstate, ts->count);
  /* the layers' outputs and gradients (the next passes rewrite them) and the parameter
   * gradients (the next backward replaces them) give their pages back, so that the test
   * split's reads and the evaluation do not raise the peak; reproducible mode's gradient
   * buffers are its own */
  mn_net_release_buffers(&tr->net, !tr->s.reproducible);
  mn_eval_sums es;
  double *chunks = NULL;
  size_t nchunks = 0;
  if (tr->s.reproducible) {
    /* each chunk's loss in its own slot, zero elsewhere: the sum over ranks is exact, and
     * every rank adds the chunks in order */
    nchunks = tr->has_test ? (tr->test_src.info.rows + (size_t)tr->s.eval_batch - 1) /
                                 (size_t)tr->s.eval_batch
                           : 0;
    chunks = calloc(nchunks + 1, sizeof *chunks);
    if (!chunks) mn_world_abort(&tr->w, "out of memory");
  }
  mn_err err;
  int rc = mn_eval_local(&tr->net, &tr->test, (int)tr->s.eval_batch, tr->ex, tr->ey, tr->et, &es,
                         chunks ? chunks + tr->test.begin / (size_t)tr->s.eval_batch : NULL, &err);
  if (mn_world_agree(&tr->w, rc, &err) != 0) {
    free(chunks);
    return -1;
  }
  if (chunks) {
    MPI_Allreduce(MPI_IN_PLACE, chunks, (int)nchunks, MPI_DOUBLE, MPI_SUM, tr->w.comm);
    es.loss_sum = 0.0;
    for (size_t c = 0; c < nchunks; c++) es.loss_sum += chunks[c];
    free(chunks);
  }
  double local[7 + PHASES] = {ts->loss_sum, ts->correct, ts->count,
                              es.loss_sum,  es.correct,  es.count};
  for (int i = 0; i < PHASES; i++) local[6 + i] = ts->time[i];
  local[6 + PHASES] = ts->comm_before_last;
  double sum[7 + PHASES], rss = mn_peak_rss_mb(), held[3];
  resources(&held[0], &held[1], &held[2]); /* the largest over ranks is reported */
  MPI_Allreduce(MPI_IN_PLACE, held, 3, MPI_DOUBLE, MPI_MAX, tr->w.comm);
  double pss = pss_mb(); /* summed over ranks: what the job's processes take */
  MPI_Allreduce(MPI_IN_PLACE, &pss, 1, MPI_DOUBLE, MPI_SUM, tr->w.comm);
  MPI_Allreduce(local, sum, 7 + PHASES, MPI_DOUBLE, MPI_SUM, tr->w.comm);
  if (tr->s.reproducible) { /* every rank holds the global batches' sums, added in order */
    sum[0] = ts->loss_sum, sum[1] = ts->correct, sum[2] = ts->count;
    sum[3] = es.loss_sum;
  }
  MPI_Allreduce(MPI_IN_PLACE, &rss, 1, MPI_DOUBLE, MPI_MAX, tr->w.comm);
  if (mn_world_agree(&tr->w, check_replicas(tr, &err), &err) != 0) return -1;
  if (tr->w.rank != 0) return 0;
  double train_loss = sum[2] > 0 ? sum[0] / sum[2] : NAN;
  double train_acc = sum[2] > 0 ? sum[1] / sum[2] : NAN;
  double test_loss = sum[3] / sum[5], test_acc = sum[4] / sum[5];
  tr->last_test_loss = test_loss;
  tr->last_test_acc = test_acc;
  double sps = train_seconds > 0 ? (double)samples / train_seconds : 0.0;
  double wall = MPI_Wtime() - tr->t_start;
  double lr = mn_optim_lr(&tr->s.opt, step > 0 ? step - 1 : 0);
  bool labels = tr->src.info.has_labels;
  if (tr->bar) printf("\r\033[K");
  printf("epoch %lld/%ld  step %lld  train_loss %.4f", epoch, tr->s.epochs, step, train_loss);
  if (tr->has_test) printf("  test_loss %.4f", test_loss);
  if (labels && tr->has_test) printf("  test_acc %.2f%%", 100.0 * test_acc);
  printf("  %.0f samples/s  %.1f s\n", sps, wall);
  fflush(stdout);
  if (tr->metrics) {
    char train_acc_s[40], test_acc_s[40], train_loss_s[40], test_loss_s[40];
    const bool exact = tr->s.reproducible;
    json_number(train_loss_s, sizeof train_loss_s, train_loss, exact);
    json_number(test_loss_s, sizeof test_loss_s, test_loss, exact);
    json_number(train_acc_s, sizeof train_acc_s, labels ? train_acc : NAN, exact);
    json_number(test_acc_s, sizeof test_acc_s, labels ? test_acc : NAN, exact);
    fprintf(tr->metrics,
            "{\"epoch\": %lld, \"epoch_progress\": %.4f, \"step\": %lld, \"train_loss\": %s, "
            "\"train_accuracy\": %s, "
            "\"test_loss\": %s, \"test_accuracy\": %s, \"test_correct\": %.0f, "
            "\"test_count\": %.0f, \"lr\": %.6g, \"samples_per_s\": %.1f, \"wall_s\": %.3f, "
            "\"world_size\": %d, \"train_seconds\": %.4f, ",
            epoch, (double)step / (double)tr->sampler.steps_per_epoch, step, train_loss_s,
            train_acc_s, test_loss_s, test_acc_s, sum[4], sum[5], lr, sps, wall, tr->w.size,
            train_seconds);
    /* where the steps' time went, averaged over ranks */
    for (int i = 0; i < PHASES; i++)
      fprintf(tr->metrics, "\"time_%s_s\": %.4f, ", phase_names[i], sum[6 + i] / tr->w.size);
    if (tr->sync.node || tr->w.size == 1) /* train_sums.comm_before_last */
      fprintf(tr->metrics, "\"time_comm_before_last_s\": %.4f, ", sum[6 + PHASES] / tr->w.size);
    else
      fprintf(tr->metrics, "\"time_comm_before_last_s\": null, ");
    fprintf(tr->metrics,
            "\"peak_rss_mb\": %.1f, \"allreduce\": \"%s\", \"bucket_mb\": %.3f, \"overlap\": %s, "
            "\"prefetch\": %s, \"first_step_unix\": %.3f, \"skipped_steps\": %lld, "
            "\"rss_mb\": %.1f, \"pss_mb\": %.1f, \"open_fds\": %.0f, \"hdf5_objects\": %.0f}\n",
            rss, tr->sync.node ? "node" : "mpi", (double)tr->sync.bucket_floats * 4 / 1e6,
            tr->s.overlap ? "true" : "false", tr->s.prefetch ? "true" : "false",
            tr->first_step_unix, tr->skipped_steps, held[0], pss, held[1], held[2]);
    fflush(tr->metrics);
  }
  return 0;
}

void mn_trainer_progress(const trainer *tr, long long epoch, long step, double loss, double seconds,
                         long samples) {
  if (tr->bar) {
    int width = 30, done = (int)(width * (step + 1) / tr->sampler.steps_per_epoch);
    char bar[40];
    for (int i = 0; i < width; i++) bar[i] = i < done ? '#' : '.';
    bar[width] = '\0';
    printf("\r\033[Kepoch %lld/%ld [%s] %ld/%ld  loss %.4f  %.0f samples/s", epoch + 1,
           tr->s.epochs, bar, step + 1, tr->sampler.steps_per_epoch, loss,
           seconds > 0 ? samples / seconds : 0.0);
  } else {
    printf("epoch %lld/%ld  step %ld/%ld  loss %.4f  %.0f samples/s\n", epoch + 1, tr->s.epochs,
           step + 1, tr->sampler.steps_per_epoch, loss, seconds > 0 ? samples / seconds : 0.0);
  }
  fflush(stdout);
}
