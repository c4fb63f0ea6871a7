/* fuzz_file.h: the fuzz input as a temporary file, for readers that take a path. */
#ifndef MN_FUZZ_FILE_H
#define MN_FUZZ_FILE_H

#include <stdint.h>
#include <stdio.h>
#include <unistd.h>

/* Writes data to /tmp/mpinet-fuzz-<tag>-<pid><suffix> and puts its name in path; 0 on success. */
static inline int fuzz_write_file(const uint8_t *data, size_t size, const char *tag,
                                  const char *suffix, char *path, size_t len) {
  snprintf(path, len, "/tmp/mpinet-fuzz-%s-%d%s", tag, (int)getpid(), suffix);
  FILE *f = fopen(path, "wb");
  if (!f) return -1;
  fwrite(data, 1, size, f);
  fclose(f);
  return 0;
}

#endif
