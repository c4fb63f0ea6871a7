#define _POSIX_C_SOURCE 200809L
/* h5util.c: HDF5 attribute helpers and checked file opening. */
#include "h5util.h"

#include <pthread.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void mn_h5_quiet(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

hid_t mn_h5_open_read(const char *path, mn_err *err) {
  if (access(path, R_OK) != 0) {
    mn_fail(err, "%s: cannot open (%s)", path, strerror(errno));
    return H5I_INVALID_HID;
  }
  htri_t is = H5Fis_hdf5(path);
  if (is <= 0) {
    mn_fail(err, "%s: not an HDF5 file (or truncated)", path);
    return H5I_INVALID_HID;
  }
  /* Every rank opens the dataset read-only at once. HDF5 (>= 1.10) then takes a shared lock,
   * which any number of readers may hold; on file systems without locks (some NFS and Lustre
   * mounts) it would refuse to open the file at all, so locking is kept but ignored where
   * the file system has it disabled. HDF5_USE_FILE_LOCKING=FALSE still turns it off. */
  hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
  H5Pset_file_locking(fapl, true, true);
  hid_t f = H5Fopen(path, H5F_ACC_RDONLY, fapl);
  H5Pclose(fapl);
  if (f < 0) mn_fail(err, "%s: HDF5 cannot open it (corrupt or truncated?)", path);
  return f;
}

static int write_attr(hid_t obj, const char *name, hid_t type, const void *v) {
  hid_t space = H5Screate(H5S_SCALAR);
  if (H5Aexists(obj, name) > 0) H5Adelete(obj, name);
  hid_t a = H5Acreate2(obj, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
  int rc = a >= 0 && H5Awrite(a, type, v) >= 0 ? 0 : -1;
  if (a >= 0) H5Aclose(a);
  H5Sclose(space);
  return rc;
}

int mn_h5_write_attr_long(hid_t obj, const char *name, long long v) {
  return write_attr(obj, name, H5T_NATIVE_LLONG, &v);
}

int mn_h5_write_attr_double(hid_t obj, const char *name, double v) {
  return write_attr(obj, name, H5T_NATIVE_DOUBLE, &v);
}

int mn_h5_write_attr_string(hid_t obj, const char *name, const char *v) {
  hid_t t = H5Tcopy(H5T_C_S1);
  H5Tset_size(t, strlen(v) + 1);
  H5Tset_cset(t, H5T_CSET_UTF8);
  int rc = write_attr(obj, name, t, v);
  H5Tclose(t);
  return rc;
}

static int read_attr(hid_t obj, const char *name, hid_t mem_type, H5T_class_t want, void *v) {
  if (H5Aexists(obj, name) <= 0) return -1;
  hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
  if (a < 0) return -1;
  hid_t t = H5Aget_type(a);
  hid_t space = H5Aget_space(a);
  H5T_class_t cls = H5Tget_class(t);
  bool ok = H5Sget_simple_extent_npoints(space) == 1 &&
            (cls == want || (want == H5T_FLOAT && cls == H5T_INTEGER));
  int rc = ok && H5Aread(a, mem_type, v) >= 0 ? 0 : -1;
  H5Sclose(space);
  H5Tclose(t);
  H5Aclose(a);
  return rc;
}

int mn_h5_read_attr_long(hid_t obj, const char *name, long long *v) {
  return read_attr(obj, name, H5T_NATIVE_LLONG, H5T_INTEGER, v);
}

int mn_h5_read_attr_double(hid_t obj, const char *name, double *v) {
  return read_attr(obj, name, H5T_NATIVE_DOUBLE, H5T_FLOAT, v);
}

char *mn_h5_read_attr_string(hid_t obj, const char *name) {
  if (H5Aexists(obj, name) <= 0) return NULL;
  hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
  if (a < 0) return NULL;
  hid_t t = H5Aget_type(a);
  char *out = NULL;
  if (H5Tget_class(t) == H5T_STRING && !H5Tis_variable_str(t)) {
    size_t n = H5Tget_size(t);
    out = calloc(n + 1, 1);
    hid_t mt = H5Tcopy(H5T_C_S1);
    H5Tset_size(mt, n + 1);
    H5Tset_cset(mt, H5Tget_cset(t)); /* HDF5 will not convert between ASCII and UTF-8 */
    if (out && H5Aread(a, mt, out) < 0) {
      free(out);
      out = NULL;
    }
    H5Tclose(mt);
  } else if (H5Tget_class(t) == H5T_STRING) {
    char *vs = NULL;
    hid_t mt = H5Tcopy(H5T_C_S1);
    H5Tset_size(mt, H5T_VARIABLE);
    H5Tset_cset(mt, H5Tget_cset(t));
    if (H5Aread(a, mt, &vs) >= 0 && vs) {
      out = strdup(vs);
      H5free_memory(vs);
    }
    H5Tclose(mt);
  }
  H5Tclose(t);
  H5Aclose(a);
  return out;
}

bool mn_h5_exists(hid_t loc, const char *path) {
  /* H5Lexists needs every intermediate link to exist: check each prefix in turn. */
  char buf[512];
  snprintf(buf, sizeof buf, "%s", path);
  for (char *p = buf + (buf[0] == '/'); (p = strchr(p, '/')) != NULL; p++) {
    *p = '\0';
    if (H5Lexists(loc, buf, H5P_DEFAULT) <= 0) return false;
    *p = '/';
  }
  return H5Lexists(loc, buf, H5P_DEFAULT) > 0;
}

int mn_h5_write_array(hid_t loc, const char *name, hid_t type, int rank, const size_t *dims,
                      const void *data, bool compress) {
  hsize_t hd[4], chunk[4];
  size_t row_bytes = H5Tget_size(type);
  for (int i = 0; i < rank; i++) {
    hd[i] = dims[i];
    chunk[i] = dims[i] ? dims[i] : 1;
    if (i > 0) row_bytes *= dims[i];
  }
  /* whole rows, about 1 MiB per chunk */
  size_t rows = row_bytes ? ((size_t)1 << 20) / row_bytes : 1;
  chunk[0] = rows < 1 ? 1 : rows > dims[0] ? (dims[0] ? dims[0] : 1) : rows;
  hid_t space = H5Screate_simple(rank, hd, NULL);
  hid_t plist = H5Pcreate(H5P_DATASET_CREATE);
  H5Pset_chunk(plist, rank, chunk);
  H5Pset_fletcher32(plist);
  if (compress) {
    H5Pset_shuffle(plist);
    H5Pset_deflate(plist, 4);
  }
  hid_t d = H5Dcreate2(loc, name, type, space, H5P_DEFAULT, plist, H5P_DEFAULT);
  int rc = d >= 0 && H5Dwrite(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) >= 0 ? 0 : -1;
  if (d >= 0) H5Dclose(d);
  H5Pclose(plist);
  H5Sclose(space);
  return rc;
}

static pthread_mutex_t h5_mutex = PTHREAD_MUTEX_INITIALIZER;
void mn_h5_lock(void) { pthread_mutex_lock(&h5_mutex); }
void mn_h5_unlock(void) { pthread_mutex_unlock(&h5_mutex); }

bool mn_h5_file_has(const char *path, const char *name) {
  mn_err ignored;
  hid_t f = mn_h5_open_read(path, &ignored);
  if (f < 0) return false;
  const bool has = mn_h5_exists(f, name);
  H5Fclose(f);
  return has;
}
