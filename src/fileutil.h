/* fileutil.h: durable file operations: a file that is renamed into place after fsync is
 * either the old version or the complete new one, whatever kills the job in between. */
#ifndef MN_FILEUTIL_H
#define MN_FILEUTIL_H

#include "error.h"

/* mkdir -p */
int mn_mkdir_p(const char *dir, mn_err *err);
/* fsync a file, then rename it over `final` and fsync the directory. */
int mn_commit_file(const char *tmp, const char *final, mn_err *err);
/* Writes n bytes to path via path.tmp + mn_commit_file; on any failure (disk full) path.tmp
 * is removed and path is untouched. */
int mn_write_bytes_atomic(const char *path, const void *bytes, size_t n, mn_err *err);
/* Writes `text` to path via path.tmp + mn_commit_file. */
int mn_write_file_atomic(const char *path, const char *text, mn_err *err);
/* Reads a whole (small) file; caller frees. NULL with err on failure. */
char *mn_read_file(const char *path, size_t max_bytes, mn_err *err);

#endif
