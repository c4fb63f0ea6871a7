/* run_dir.h: the run directory: checkpoints ckpt-<step>.h5, a `latest` pointer file naming
 * the newest good one, config.ini (the effective config) and metrics.jsonl. Only rank 0
 * calls the writing functions. */
#ifndef MN_RUN_DIR_H
#define MN_RUN_DIR_H

#include <stdbool.h>
#include <stddef.h>

#include "error.h"

void mn_run_dir_checkpoint_path(const char *dir, long long step, char *buf, size_t len);
/* Points `latest` at the checkpoint of `step` (atomically) and deletes the oldest
 * checkpoints beyond `keep`. */
int mn_run_dir_commit(const char *dir, long long step, int keep, mn_err *err);
/* The steps of the checkpoints in dir, ascending (at most max); how many. */
int mn_run_dir_list(const char *dir, long long *steps, int max);
/* The checkpoint `latest` names; fails if there is none. */
int mn_run_dir_latest(const char *dir, char *path, size_t len, mn_err *err);
/* True if the directory holds any checkpoint or a `latest` pointer. */
bool mn_run_dir_has_checkpoints(const char *dir);

#endif
