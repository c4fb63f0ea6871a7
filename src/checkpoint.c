/* checkpoint.c: checkpoint save (atomic) and load (validated) in HDF5. */
#include "checkpoint.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fileutil.h"
#include "h5util.h"

#define MN_VERSION_STRING "mpinet 0.1.0"

/* Writes every layer's tensors of `buf` (laid out like the parameters) under /<root>. */
static int write_tensors(hid_t f, const char *root, const mn_net *net, const float *buf,
                         const char *suffix) {
  hid_t g = H5Gcreate2(f, root, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  if (g < 0)
    return -1;
  int rc = 0;
  for (int i = 0; i < net->nlayers && rc == 0; i++) {
    const mn_layer *l = &net->layers[i];
    mn_tensor_info t[8];
    int nt = l->ops->tensors(l, t, 8);
    if (nt == 0)
      continue;
    hid_t lg = H5Gcreate2(g, l->name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (lg < 0) {
      rc = -1;
      break;
    }
    for (int j = 0; j < nt && rc == 0; j++) {
      char name[64];
      snprintf(name, sizeof name, "%s%s", t[j].name, suffix);
      rc = mn_h5_write_array(lg, name, H5T_NATIVE_FLOAT, t[j].rank, t[j].dim,
                             buf + l->param_offset + t[j].offset, false);
    }
    H5Gclose(lg);
  }
  H5Gclose(g);
  return rc;
}

int mn_checkpoint_save(const char *path, const mn_net *net, const float *velocity,
                       const mn_ckpt_meta *meta, mn_err *err) {
  char tmp[1100];
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  mn_h5_quiet();
  /* The 1.8+ file format checksums metadata (object headers, B-trees) too, so damage
   * outside the Fletcher32-protected arrays is caught as well; h5py and h5dump read it. */
  hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
  H5Pset_libver_bounds(fapl, H5F_LIBVER_V18, H5F_LIBVER_LATEST);
  hid_t f = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
  H5Pclose(fapl);
  if (f < 0)
    return mn_fail(err, "%s: cannot create checkpoint", tmp);
  int rc = write_tensors(f, "params", net, net->params, "");
  if (rc == 0 && velocity)
    rc = write_tensors(f, "optimizer", net, velocity, "_momentum");
  char hash[32];
  snprintf(hash, sizeof hash, "%016" PRIx64, mn_net_param_hash(net));
  if (rc == 0)
    rc = mn_h5_write_attr_string(f, "format", "mpinet-checkpoint") |
         mn_h5_write_attr_long(f, "format_version", MN_CHECKPOINT_FORMAT) |
         mn_h5_write_attr_string(f, "producer", MN_VERSION_STRING) |
         mn_h5_write_attr_long(f, "step", meta->step) |
         mn_h5_write_attr_long(f, "epoch", meta->epoch) |
         mn_h5_write_attr_long(f, "seed", meta->seed) |
         mn_h5_write_attr_long(f, "world_size", meta->world_size) |
         mn_h5_write_attr_long(f, "nparams", (long long)net->nparams) |
         mn_h5_write_attr_string(f, "param_hash_fnv1a64", hash) |
         mn_h5_write_attr_string(f, "config", meta->config_text ? meta->config_text : "") |
         mn_h5_write_attr_string(f, "data_path", meta->data_path ? meta->data_path : "");
  if (H5Fclose(f) < 0)
    rc = -1;
  if (rc != 0) {
    unlink(tmp);
    return mn_fail(err, "%s: writing the checkpoint failed (disk full or unwritable?)", tmp);
  }
  return mn_commit_file(tmp, path, err);
}

static int read_meta(hid_t f, const char *path, mn_ckpt_meta *meta, mn_err *err) {
  memset(meta, 0, sizeof *meta);
  char *format = mn_h5_read_attr_string(f, "format");
  bool ok = format && strcmp(format, "mpinet-checkpoint") == 0;
  free(format);
  if (!ok)
    return mn_fail(err, "%s: not an mpinet checkpoint (no format attribute)", path);
  long long version;
  if (mn_h5_read_attr_long(f, "format_version", &version) != 0 || version != MN_CHECKPOINT_FORMAT)
    return mn_fail(err,
                   "%s: checkpoint format_version %lld is not understood (this build "
                   "reads %d)",
                   path, version, MN_CHECKPOINT_FORMAT);
  if (mn_h5_read_attr_long(f, "step", &meta->step) != 0 ||
      mn_h5_read_attr_long(f, "epoch", &meta->epoch) != 0 ||
      mn_h5_read_attr_long(f, "seed", &meta->seed) != 0 ||
      mn_h5_read_attr_long(f, "world_size", &meta->world_size) != 0)
    return mn_fail(err, "%s: checkpoint lacks step/epoch/seed/world_size attributes", path);
  meta->config_text = mn_h5_read_attr_string(f, "config");
  meta->data_path = mn_h5_read_attr_string(f, "data_path");
  return 0;
}

int mn_checkpoint_read_meta(const char *path, mn_ckpt_meta *meta, mn_err *err) {
  mn_h5_quiet();
  hid_t f = mn_h5_open_read(path, err);
  if (f < 0)
    return -1;
  int rc = read_meta(f, path, meta, err);
  H5Fclose(f);
  return rc;
}

void mn_ckpt_meta_free(mn_ckpt_meta *meta) {
  free(meta->config_text);
  free(meta->data_path);
  meta->config_text = meta->data_path = NULL;
}

static int read_tensors(hid_t f, const char *path, const char *root, mn_net *net, float *buf,
                        const char *suffix, mn_err *err) {
  for (int i = 0; i < net->nlayers; i++) {
    const mn_layer *l = &net->layers[i];
    mn_tensor_info t[8];
    int nt = l->ops->tensors(l, t, 8);
    for (int j = 0; j < nt; j++) {
      char name[256];
      snprintf(name, sizeof name, "/%s/%s/%s%s", root, l->name, t[j].name, suffix);
      if (!mn_h5_exists(f, name))
        return mn_fail(err, "%s: no %s: the checkpoint is of a different model", path, name);
      hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
      hid_t s = H5Dget_space(d);
      hsize_t dims[8];
      int rank = H5Sget_simple_extent_ndims(s);
      H5Sget_simple_extent_dims(s, dims, NULL);
      bool same = rank == t[j].rank;
      for (int k = 0; same && k < rank; k++)
        same = dims[k] == t[j].dim[k];
      int rc = 0;
      if (!same) {
        char have[128] = "(", want[128] = "(";
        for (int k = 0; k < rank; k++)
          snprintf(have + strlen(have), sizeof have - strlen(have), "%s%llu", k ? ", " : "",
                   (unsigned long long)dims[k]);
        for (int k = 0; k < t[j].rank; k++)
          snprintf(want + strlen(want), sizeof want - strlen(want), "%s%zu", k ? ", " : "",
                   t[j].dim[k]);
        rc = mn_fail(err,
                     "%s: %s has shape %s) but the model's is %s): the checkpoint is of "
                     "a different model",
                     path, name, have, want);
      } else if (H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT,
                         buf + l->param_offset + t[j].offset) < 0) {
        rc = mn_fail(err, "%s: cannot read %s (checksum mismatch: corrupt file?)", path, name);
      }
      H5Sclose(s);
      H5Dclose(d);
      if (rc != 0)
        return rc;
    }
  }
  return 0;
}

int mn_checkpoint_load(const char *path, mn_net *net, float *velocity, mn_ckpt_meta *meta,
                       mn_err *err) {
  mn_h5_quiet();
  hid_t f = mn_h5_open_read(path, err);
  if (f < 0)
    return -1;
  int rc = read_meta(f, path, meta, err);
  if (rc == 0)
    rc = read_tensors(f, path, "params", net, net->params, "", err);
  if (rc == 0 && velocity)
    rc = read_tensors(f, path, "optimizer", net, velocity, "_momentum", err);
  if (rc == 0) {
    char *want = mn_h5_read_attr_string(f, "param_hash_fnv1a64");
    char have[32];
    snprintf(have, sizeof have, "%016" PRIx64, mn_net_param_hash(net));
    if (!want || strcmp(want, have) != 0)
      rc = mn_fail(err, "%s: parameter hash %s does not match the stored %s (corrupt file)", path,
                   have, want ? want : "(missing)");
    free(want);
  }
  H5Fclose(f);
  if (rc != 0)
    mn_ckpt_meta_free(meta);
  return rc;
}
