/* fileutil.c: mkdir -p, fsync + rename commits, whole-file reads. */
#define _POSIX_C_SOURCE 200809L
#include "fileutil.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int mn_mkdir_p(const char *dir, mn_err *err) {
  char buf[1024];
  if (snprintf(buf, sizeof buf, "%s", dir) >= (int)sizeof buf)
    return mn_fail(err, "%s: path too long", dir);
  for (char *p = buf + 1; *p; p++) {
    if (*p != '/') continue;
    *p = '\0';
    if (mkdir(buf, 0777) != 0 && errno != EEXIST)
      return mn_fail(err, "%s: cannot create directory (%s)", buf, strerror(errno));
    *p = '/';
  }
  if (mkdir(buf, 0777) != 0 && errno != EEXIST)
    return mn_fail(err, "%s: cannot create directory (%s)", buf, strerror(errno));
  struct stat st;
  if (stat(buf, &st) != 0 || !S_ISDIR(st.st_mode)) return mn_fail(err, "%s: not a directory", buf);
  return 0;
}

static int fsync_path(const char *path, int flags) {
  int fd = open(path, flags);
  if (fd < 0) return -1;
  int rc = fsync(fd);
  close(fd);
  return rc;
}

int mn_commit_file(const char *tmp, const char *final, mn_err *err) {
  if (fsync_path(tmp, O_RDONLY) != 0) {
    int e = errno;
    unlink(tmp);
    return mn_fail(err, "%s: fsync failed (%s)", tmp, strerror(e));
  }
  if (rename(tmp, final) != 0) {
    int e = errno;
    unlink(tmp);
    return mn_fail(err, "%s: cannot rename into place (%s)", final, strerror(e));
  }
  char dir[1024];
  snprintf(dir, sizeof dir, "%s", final);
  fsync_path(dirname(dir), O_RDONLY | O_DIRECTORY); /* best effort: some FS refuse it */
  return 0;
}

int mn_write_bytes_atomic(const char *path, const void *bytes, size_t n, mn_err *err) {
  char tmp[1100];
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  FILE *f = fopen(tmp, "wb");
  if (!f) return mn_fail(err, "%s: cannot create (%s)", tmp, strerror(errno));
  bool ok = fwrite(bytes, 1, n, f) == n;
  ok = fflush(f) == 0 && ok;
  int e = errno;
  if (fclose(f) != 0) ok = false, e = errno;
  if (!ok) {
    unlink(tmp);
    return mn_fail(err, "%s: write failed (%s)", tmp, strerror(e));
  }
  return mn_commit_file(tmp, path, err);
}

int mn_write_file_atomic(const char *path, const char *text, mn_err *err) {
  return mn_write_bytes_atomic(path, text, strlen(text), err);
}

char *mn_read_file(const char *path, size_t max_bytes, mn_err *err) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    mn_fail(err, "%s: cannot open (%s)", path, strerror(errno));
    return NULL;
  }
  char *buf = malloc(max_bytes + 1);
  size_t n = buf ? fread(buf, 1, max_bytes + 1, f) : 0;
  bool bad = !buf || ferror(f);
  fclose(f);
  if (bad || n > max_bytes) {
    free(buf);
    mn_fail(err, "%s: %s", path, bad ? "read error" : "file too large");
    return NULL;
  }
  buf[n] = '\0';
  return buf;
}
