/* run_dir.c: checkpoint naming, the `latest` pointer and keep-the-last-K pruning. */
#define _POSIX_C_SOURCE 200809L
#include "run_dir.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fileutil.h"

void mn_run_dir_checkpoint_path(const char *dir, long long step, char *buf, size_t len) {
  snprintf(buf, len, "%s/ckpt-%08lld.h5", dir, step);
}

static int is_checkpoint_name(const char *name, long long *step) {
  char tail[8];
  return sscanf(name, "ckpt-%lld.%4s", step, tail) == 2 && strcmp(tail, "h5") == 0;
}

static int compare_ll(const void *a, const void *b) {
  long long x = *(const long long *)a, y = *(const long long *)b;
  return (x > y) - (x < y);
}

int mn_run_dir_list(const char *dir, long long *steps, int max) {
  DIR *d = opendir(dir);
  if (!d) return 0;
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL && n < max) {
    long long s;
    if (is_checkpoint_name(e->d_name, &s)) steps[n++] = s;
  }
  closedir(d);
  qsort(steps, (size_t)n, sizeof steps[0], compare_ll);
  return n;
}

int mn_run_dir_commit(const char *dir, long long step, int keep, mn_err *err) {
  char path[1100], text[64];
  snprintf(path, sizeof path, "%s/latest", dir);
  snprintf(text, sizeof text, "ckpt-%08lld.h5\n", step);
  if (mn_write_file_atomic(path, text, err) != 0) return -1;
  static long long steps[4096];
  const int n = mn_run_dir_list(dir, steps, 4096);
  for (int i = 0; i < n - keep; i++) {
    if (steps[i] == step) continue;
    mn_run_dir_checkpoint_path(dir, steps[i], path, sizeof path);
    unlink(path);
  }
  return 0;
}

int mn_run_dir_latest(const char *dir, char *path, size_t len, mn_err *err) {
  char pointer[1100];
  snprintf(pointer, sizeof pointer, "%s/latest", dir);
  char *text = mn_read_file(pointer, 256, err);
  if (!text) return mn_fail(err, "%s: no checkpoint to resume from (no 'latest' file)", dir);
  text[strcspn(text, "\r\n")] = '\0';
  long long step;
  if (!is_checkpoint_name(text, &step) || strchr(text, '/')) {
    free(text);
    return mn_fail(err, "%s: does not name a checkpoint", pointer);
  }
  snprintf(path, len, "%s/%s", dir, text);
  free(text);
  if (access(path, R_OK) != 0) return mn_fail(err, "%s: names %s, which is missing", pointer, path);
  return 0;
}

bool mn_run_dir_has_checkpoints(const char *dir) {
  char pointer[1100];
  snprintf(pointer, sizeof pointer, "%s/latest", dir);
  if (access(pointer, F_OK) == 0) return true;
  DIR *d = opendir(dir);
  if (!d) return false;
  bool found = false;
  struct dirent *e;
  long long s;
  while (!found && (e = readdir(d)) != NULL) found = is_checkpoint_name(e->d_name, &s);
  closedir(d);
  return found;
}
