/* h5util.h: small HDF5 helpers: attributes as plain C values, opening with clear errors. */
#ifndef MN_H5UTIL_H
#define MN_H5UTIL_H

#include <hdf5.h>
#include <stdbool.h>

#include "error.h"

/* Turns off HDF5's own error-stack printing: mpinet reports one line of its own. */
void mn_h5_quiet(void);
/* Opens an existing file read-only; a missing or non-HDF5 file gets a clear message. */
hid_t mn_h5_open_read(const char *path, mn_err *err);

int mn_h5_write_attr_long(hid_t obj, const char *name, long long v);
int mn_h5_write_attr_double(hid_t obj, const char *name, double v);
int mn_h5_write_attr_string(hid_t obj, const char *name, const char *v);
/* Read helpers return -1 when the attribute is missing or has the wrong type. */
int mn_h5_read_attr_long(hid_t obj, const char *name, long long *v);
int mn_h5_read_attr_double(hid_t obj, const char *name, double *v);
/* Returns a malloc'ed string or NULL. */
char *mn_h5_read_attr_string(hid_t obj, const char *name);
bool mn_h5_exists(hid_t loc, const char *path);
/* Whether the file at path opens and holds the object `name`. */
bool mn_h5_file_has(const char *path, const char *name);
/* Writes a chunked dataset with the Fletcher32 checksum filter (so corruption is detected
 * on read) and, if `compress`, shuffle + deflate. dims[0] is the row dimension. */
int mn_h5_write_array(hid_t loc, const char *name, hid_t type, int rank, const size_t *dims,
                      const void *data, bool compress);

/* libhdf5's parallel build is not thread-safe: code that may run HDF5 on two threads at
 * once (the stream reader, and the main thread's checkpoints and object counts while a
 * stream is open) holds this process-wide lock around its calls. */
void mn_h5_lock(void);
void mn_h5_unlock(void);

#endif
