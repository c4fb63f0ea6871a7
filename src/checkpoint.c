/* checkpoint.c: checkpoint save (atomic) and load (validated) in HDF5. */
#define _GNU_SOURCE /* mremap */
#include "checkpoint.h"
#include "version.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fileutil.h"
#include "h5util.h"
#include "hash.h"
#include "sha256.h"


/* Parameters, layer state and every attribute a resume relies on. */
static uint64_t model_hash(const mn_net *net, const mn_ckpt_meta *m) {
  char text[256];
  snprintf(text, sizeof text,
           "step=%lld epoch=%lld seed=%lld world=%lld bucket=%lld overlap=%lld n=%zu", m->step,
           m->epoch, m->seed, m->world_size, m->bucket_floats, m->grad_overlap, net->nparams);
  uint64_t h = mn_fnv1a64(MN_FNV_SEED, net->params, net->nparams * sizeof(float));
  h = mn_fnv1a64(h, net->state, net->nstate * sizeof(float));
  h = mn_fnv1a64(h, text, strlen(text));
  h = mn_fnv1a64(h, m->config_text ? m->config_text : "",
                 m->config_text ? strlen(m->config_text) : 0);
  h = mn_fnv1a64(h, m->data_path ? m->data_path : "", m->data_path ? strlen(m->data_path) : 0);
  if (m->input_a) { /* format 2: the input transformation too */
    h = mn_fnv1a64(h, m->input_a, m->input_len * sizeof(float));
    h = mn_fnv1a64(h, m->input_b, m->input_len * sizeof(float));
    h = mn_fnv1a64(h, m->layout ? m->layout : "", m->layout ? strlen(m->layout) : 0);
  }
  if (m->target_mean) {
    h = mn_fnv1a64(h, m->target_mean, (size_t)m->ntargets * sizeof(float));
    h = mn_fnv1a64(h, m->target_std, (size_t)m->ntargets * sizeof(float));
  }
  return h;
}

/* /input: the input transformation (format 2). */
static int write_input(hid_t f, const mn_ckpt_meta *m) {
  if (!m->input_a) return 0;
  hid_t g = H5Gcreate2(f, "input", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  if (g < 0) return -1;
  const size_t n = m->input_len, k = (size_t)m->ntargets;
  int rc = mn_h5_write_array(g, "a", H5T_NATIVE_FLOAT, 1, &n, m->input_a, false) |
           mn_h5_write_array(g, "b", H5T_NATIVE_FLOAT, 1, &n, m->input_b, false) |
           mn_h5_write_attr_string(g, "layout", m->layout ? m->layout : "");
  if (m->target_mean)
    rc |= mn_h5_write_array(g, "target_mean", H5T_NATIVE_FLOAT, 1, &k, m->target_mean, false) |
          mn_h5_write_array(g, "target_std", H5T_NATIVE_FLOAT, 1, &k, m->target_std, false);
  H5Gclose(g);
  return rc;
}

static int write_residuals(hid_t f, const mn_ckpt_meta *m, size_t nparams) {
  if (!m->residuals) return 0;
  hid_t g = H5Gcreate2(f, "compression", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  if (g < 0) return -1;
  const size_t dims[2] = {(size_t)m->residual_rows, nparams};
  int rc = mn_h5_write_array(g, "residuals", H5T_NATIVE_FLOAT, 2, dims, m->residuals, false) |
           mn_h5_write_attr_string(g, "kind", m->compression ? m->compression : "");
  H5Gclose(g);
  return rc;
}

/* Whether dataset d is stored as 32-bit floats, as every array this file writes is: another
 * type is a corrupt header, which HDF5's conversion to floats would follow past the end of
 * the buffer read into (a flipped byte did, under ASan). */
static bool stored_as_floats(hid_t d) {
  hid_t type = H5Dget_type(d);
  const bool floats =
      type >= 0 && H5Tget_class(type) == H5T_FLOAT && H5Tget_size(type) == sizeof(float);
  if (type >= 0) H5Tclose(type);
  return floats;
}

/* /compression/residuals, if the file has them, into m (rows of nparams floats). */
static int read_residuals(hid_t f, const char *path, size_t nparams, mn_ckpt_meta *m, mn_err *err) {
  if (!mn_h5_exists(f, "compression") || !mn_h5_exists(f, "/compression/residuals")) return 0;
  hid_t g = H5Gopen2(f, "compression", H5P_DEFAULT);
  m->compression = mn_h5_read_attr_string(g, "kind");
  hid_t d = H5Dopen2(g, "residuals", H5P_DEFAULT);
  hid_t sp = H5Dget_space(d);
  hsize_t dims[2] = {0, 0};
  int rc = -1;
  if (H5Sget_simple_extent_ndims(sp) == 2 && H5Sget_simple_extent_dims(sp, dims, NULL) == 2 &&
      dims[0] > 0 && dims[1] == nparams && stored_as_floats(d) &&
      (m->residuals = malloc(dims[0] * dims[1] * sizeof(float))) != NULL &&
      H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, m->residuals) >= 0)
    rc = 0;
  H5Sclose(sp), H5Dclose(d), H5Gclose(g);
  if (rc != 0) {
    free(m->residuals), m->residuals = NULL;
    return mn_fail(err, "%s: /compression/residuals: unreadable or not (ranks, %zu) floats", path,
                   nparams);
  }
  m->residual_rows = (long long)dims[0];
  return 0;
}

/* Reads a 1-D float array of f into a new buffer: its length, or -1. */
static long long read_floats(hid_t f, const char *name, float **out) {
  *out = NULL;
  if (!mn_h5_exists(f, name)) return -1;
  hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
  hid_t s = H5Dget_space(d);
  hsize_t n = 0;
  long long rc = -1;
  if (H5Sget_simple_extent_ndims(s) == 1 && H5Sget_simple_extent_dims(s, &n, NULL) == 1 && n > 0 &&
      stored_as_floats(d) && (*out = malloc(n * sizeof **out)) &&
      H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, *out) >= 0)
    rc = (long long)n;
  H5Sclose(s), H5Dclose(d);
  if (rc < 0) free(*out), *out = NULL;
  return rc;
}

static int read_input(hid_t f, const char *path, mn_ckpt_meta *m, mn_err *err) {
  if (!mn_h5_exists(f, "input")) return 0; /* saved without one (a library's caller) */
  const long long na = read_floats(f, "/input/a", &m->input_a),
                  nb = read_floats(f, "/input/b", &m->input_b);
  if (na < 1 || na != nb) return mn_fail(err, "%s: /input/a and /input/b unreadable", path);
  m->input_len = (size_t)na;
  hid_t g = H5Gopen2(f, "input", H5P_DEFAULT);
  m->layout = mn_h5_read_attr_string(g, "layout");
  H5Gclose(g);
  if (mn_h5_exists(f, "/input/target_mean")) {
    const long long nm = read_floats(f, "/input/target_mean", &m->target_mean),
                    ns = read_floats(f, "/input/target_std", &m->target_std);
    if (nm < 1 || nm != ns)
      return mn_fail(err, "%s: /input/target_mean and target_std unreadable", path);
    m->ntargets = (int)nm;
  }
  return 0;
}

static uint64_t optimizer_hash(const mn_optimizer *opt) {
  uint64_t h = MN_FNV_SEED;
  for (int b = 0; opt && b < opt->nbuf; b++) h = mn_fnv1a64(h, opt->buf[b], opt->n * sizeof(float));
  return h;
}

static int write_hash(hid_t f, const char *name, uint64_t h) {
  char text[32];
  snprintf(text, sizeof text, "%016" PRIx64, h);
  return mn_h5_write_attr_string(f, name, text);
}

static int check_hash(hid_t f, const char *path, const char *name, uint64_t have, mn_err *err) {
  char *want = mn_h5_read_attr_string(f, name), text[32];
  snprintf(text, sizeof text, "%016" PRIx64, have);
  int rc = want && strcmp(want, text) == 0
               ? 0
               : mn_fail(err, "%s: %s %s does not match the stored %s (corrupt file)", path, name,
                         text, want ? want : "(missing)");
  free(want);
  return rc;
}

/* Which tensors a group holds: parameters (or buffers laid out like them), or state. */
static bool wanted(const mn_tensor_info *t, bool state) { return t->is_state == state; }

static const float *tensor_base(const mn_layer *l, const float *buf, bool state) {
  return buf + (state ? l->state_offset : l->param_offset);
}

static hid_t open_or_create_group(hid_t loc, const char *name) {
  if (H5Lexists(loc, name, H5P_DEFAULT) > 0) return H5Gopen2(loc, name, H5P_DEFAULT);
  return H5Gcreate2(loc, name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
}

/* Writes every layer's tensors of `buf` (laid out like the parameters, or like the state)
 * as /<root>/<layer>/<tensor><suffix>. With `lend`, each tensor's pages are given back to
 * the system once the image holds a copy, and *lent counts the tensors whose pages went:
 * the image grows as the buffers shrink (take_back() brings them back). */
static int write_tensors(hid_t f, const char *root, const mn_net *net, float *buf, bool state,
                         const char *suffix, bool lend, int *lent) {
  hid_t g = open_or_create_group(f, root);
  if (g < 0) return -1;
  int rc = 0;
  for (int i = 0; i < net->nlayers && rc == 0; i++) {
    const mn_layer *l = &net->layers[i];
    mn_tensor_info t[16];
    int nt = l->ops->tensors(l, t, 16), count = 0;
    for (int j = 0; j < nt; j++) count += wanted(&t[j], state);
    if (count == 0) continue;
    hid_t lg = open_or_create_group(g, l->name);
    if (lg < 0) {
      rc = -1;
      break;
    }
    for (int j = 0; j < nt && rc == 0; j++) {
      if (!wanted(&t[j], state)) continue;
      char name[64];
      snprintf(name, sizeof name, "%s%s", t[j].name, suffix);
      float *data = (float *)tensor_base(l, buf, state) + t[j].offset;
      rc = mn_h5_write_array(lg, name, H5T_NATIVE_FLOAT, t[j].rank, t[j].dim, data, false);
      if (rc == 0 && lend) {
        size_t n = 1;
        for (int k = 0; k < t[j].rank; k++) n *= t[j].dim[k];
        mn_release_pages(data, n * sizeof(float));
        ++*lent;
      }
    }
    H5Gclose(lg);
  }
  H5Gclose(g);
  return rc;
}

/* Reads /<root>/<layer>/<tensor><suffix> into `buf`, laid out like the parameters (or the
 * state), checking names and shapes against the model: every tensor, or (limit >= 0) the
 * first `limit` in the order write_tensors wrote them. */
static int read_tensors(hid_t f, const char *path, const char *root, const mn_net *net, float *buf,
                        bool state, const char *suffix, int limit, mn_err *err) {
  for (int i = 0; i < net->nlayers && limit != 0; i++) {
    const mn_layer *l = &net->layers[i];
    mn_tensor_info t[16];
    int nt = l->ops->tensors(l, t, 16);
    for (int j = 0; j < nt && limit != 0; j++) {
      if (!wanted(&t[j], state)) continue;
      if (limit > 0) limit--;
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
      for (int k = 0; same && k < rank; k++) same = dims[k] == t[j].dim[k];
      int rc = 0;
      if (!stored_as_floats(d)) {
        rc = mn_fail(err, "%s: %s is not stored as 32-bit floats (corrupt file?)", path, name);
      } else if (!same) {
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
                         (float *)tensor_base(l, buf, state) + t[j].offset) < 0) {
        rc = mn_fail(err, "%s: cannot read %s (checksum mismatch: corrupt file?)", path, name);
      }
      H5Sclose(s);
      H5Dclose(d);
      if (rc != 0) return rc;
    }
  }
  return 0;
}

/* The core driver's memory, through HDF5's file image callbacks. The checkpoint is written
 * out from it rather than from a copy made by H5Fget_file_image(), and on Linux it lives in
 * its own mapping, grown by mremap (no copy): with realloc, growing the image 1 MiB at a time
 * moved it off the heap midway (a transient second copy) and left the heap's part resident.
 * For the benchmark CNN (parameters and momentum: 27 MB) saving raised the process's peak
 * from 155 to 208 MB; the image alone is what it adds now. */
typedef struct {
  void *mem; /* the file's memory (mapped on Linux) */
  size_t len;
} core_image;

static void *image_malloc(size_t size, H5FD_file_image_op_t op, void *udata) {
  return malloc(size);
}

static void *image_memcpy(void *dest, const void *src, size_t size, H5FD_file_image_op_t op,
                          void *udata) {
  return memcpy(dest, src, size);
}

static void *image_realloc(void *ptr, size_t size, H5FD_file_image_op_t op, void *udata) {
  core_image *c = udata;
  if (op != H5FD_FILE_IMAGE_OP_FILE_RESIZE || (ptr && ptr != c->mem)) return realloc(ptr, size);
#ifdef __linux__
  const size_t page = (size_t)sysconf(_SC_PAGESIZE), len = (size + page - 1) / page * page;
  void *p = ptr ? mremap(ptr, c->len, len, MREMAP_MAYMOVE)
                : mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return NULL;
#else
  const size_t len = size;
  void *p = realloc(ptr, size);
  if (!p) return NULL;
#endif
  c->mem = p, c->len = len;
  return p;
}

static herr_t image_free(void *ptr, H5FD_file_image_op_t op, void *udata) {
  core_image *c = udata;
  if (ptr && ptr == c->mem) {
#ifdef __linux__
    munmap(ptr, c->len);
#else
    free(ptr);
#endif
    c->mem = NULL, c->len = 0;
  } else
    free(ptr);
  return 0;
}

static void *udata_copy(void *udata) { return udata; } /* one capture, shared by fapl copies */
static herr_t udata_free(void *udata) { return 0; }

/* What a checkpoint copies out of the training state: the parameters, the layer state and
 * each optimizer buffer (lent: whether write_tensors lends its pages). */
typedef struct {
  const char *root;
  float *buf;
  bool state, lent;
  char suffix[32];
} tensor_set;

static int tensor_sets(const mn_net *net, const mn_optimizer *opt, tensor_set *sets) {
  int n = 0;
  sets[n++] = (tensor_set){"params", net->params, false, true, ""};
  if (net->nstate > 0) sets[n++] = (tensor_set){"state", net->state, true, false, ""};
  for (int b = 0; opt && b < opt->nbuf && b < 4; b++) {
    sets[n] = (tensor_set){"optimizer", opt->buf[b], false, true, ""};
    snprintf(sets[n++].suffix, sizeof sets[0].suffix, "_%s", opt->buf_name[b]);
  }
  return n;
}

/* Brings back every lent tensor from f and checks the bits against the hashes taken before
 * lending; -1 (the training state is lost) if anything is missing or differs. */
static int take_back(hid_t f, const char *path, const mn_net *net, const mn_optimizer *opt,
                     const tensor_set *sets, int nsets, const int *lent, uint64_t params_hash,
                     uint64_t opt_hash) {
  mn_err ignored;
  for (int k = 0; k < nsets; k++)
    if (sets[k].lent && lent[k] > 0 &&
        read_tensors(f, path, sets[k].root, net, sets[k].buf, false, sets[k].suffix, lent[k],
                     &ignored) != 0)
      return -1;
  return mn_net_param_hash(net) == params_hash && optimizer_hash(opt) == opt_hash ? 0 : -1;
}

static int save(const char *path, mn_net *net, mn_optimizer *opt, const mn_ckpt_meta *meta,
                mn_err *err) {
  char tmp[1100];
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  mn_h5_quiet();
  /* The file is built in memory (HDF5's core driver, no backing store) and written out by
   * us: HDF5 never sees a failing disk, whose errors (ENOSPC in H5Fclose) leave the library
   * with a half-closed file that crashes it at exit. The default (oldest) file format, because
   * HDF5 1.10's H5Fget_file_image leaves a stale superblock checksum in images of the newer
   * formats (HDF5 issue 1915). Its metadata carries no checksums, so the content hashes below
   * cover what Fletcher32 on the arrays does not: every value and every attribute.
   *
   * The image would double the memory of what it copies, the parameters and the optimizer's
   * buffers (for a model on a node without room to spare, the checkpoint would be what runs
   * out). So each tensor's pages are lent to it: given back to the system once the image
   * holds the tensor, and read back (checked against the hashes taken first) from the file
   * once it is written, or from the image if writing failed. */
  char hash[32], sha[65];
  const uint64_t params_hash = mn_net_param_hash(net), opt_hash = optimizer_hash(opt),
                 whole_hash = model_hash(net, meta);
  snprintf(hash, sizeof hash, "%016" PRIx64, params_hash);
  mn_sha256_hex(net->params, net->nparams * sizeof(float), sha);
  core_image image = {NULL, 0};
  H5FD_file_image_callbacks_t callbacks = {image_malloc, image_memcpy, image_realloc, image_free,
                                           udata_copy,   udata_free,   &image};
  hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
  H5Pset_file_image_callbacks(fapl, &callbacks);
  H5Pset_fapl_core(fapl, (size_t)1 << 20, 0);
  hid_t f = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
  H5Pclose(fapl);
  if (f < 0) return mn_fail(err, "%s: cannot create checkpoint in memory", tmp);
  tensor_set sets[8];
  int lent[8] = {0}, rc = 0;
  const int nsets = tensor_sets(net, opt, sets);
  for (int k = 0; k < nsets && rc == 0; k++)
    rc = write_tensors(f, sets[k].root, net, sets[k].buf, sets[k].state, sets[k].suffix,
                       sets[k].lent, &lent[k]);
  if (rc == 0)
    rc = mn_h5_write_attr_string(f, "format", "mpinet-checkpoint") |
         mn_h5_write_attr_long(f, "format_version", MN_CHECKPOINT_FORMAT) |
         mn_h5_write_attr_string(f, "producer", "mpinet " MN_VERSION) |
         mn_h5_write_attr_long(f, "step", meta->step) |
         mn_h5_write_attr_long(f, "epoch", meta->epoch) |
         mn_h5_write_attr_long(f, "seed", meta->seed) |
         mn_h5_write_attr_long(f, "world_size", meta->world_size) |
         mn_h5_write_attr_long(f, "bucket_floats", meta->bucket_floats) |
         mn_h5_write_attr_long(f, "grad_overlap", meta->grad_overlap) |
         mn_h5_write_attr_long(f, "nparams", (long long)net->nparams) |
         mn_h5_write_attr_string(f, "param_hash_fnv1a64", hash) |
         mn_h5_write_attr_string(f, "param_sha256", sha) |
         write_hash(f, "model_hash_fnv1a64", whole_hash) |
         write_hash(f, "optimizer_hash_fnv1a64", opt_hash) |
         mn_h5_write_attr_string(f, "config", meta->config_text ? meta->config_text : "") |
         mn_h5_write_attr_string(f, "data_path", meta->data_path ? meta->data_path : "") |
         write_input(f, meta) | write_residuals(f, meta, net->nparams);
  /* After a flush the core driver's memory holds the file, as H5Fget_file_image would copy
   * it (its size) but for one field: while the file is open for writing, HDF5 sets the
   * superblock's file consistency flags (bytes 20-23 of the version 0 superblock, the oldest
   * format used here); H5Fget_file_image clears them in its copy, and so do we, in the
   * memory the file is about to be discarded from. Any other layout, or an image reaching
   * past that memory (unwritten space at its end reads as zeros), takes the copy. */
  static const unsigned char signature[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
  ssize_t size = -1;
  bool written = false;
  if (rc == 0 && H5Fflush(f, H5F_SCOPE_GLOBAL) >= 0 && (size = H5Fget_file_image(f, NULL, 0)) > 0) {
    unsigned char *mem = image.mem, *copy = NULL, *out = NULL;
    if (mem && size >= 24 && (size_t)size <= image.len && memcmp(mem, signature, 8) == 0 &&
        mem[8] == 0) {
      memset(mem + 20, 0, 4);
      out = mem;
    } else if ((copy = malloc((size_t)size)) != NULL &&
               H5Fget_file_image(f, copy, (size_t)size) == size)
      out = copy;
    if (out)
      written = (rc = mn_write_bytes_atomic(path, out, (size_t)size, err)) == 0;
    else
      rc = mn_fail(err, "%s: building the checkpoint failed (out of memory?)", tmp);
    free(copy);
  } else if (rc == 0) {
    rc = mn_fail(err, "%s: building the checkpoint failed (out of memory?)", tmp);
  } else {
    mn_fail(err, "%s: building the checkpoint failed", tmp);
  }
  /* the lent pages come back from the file just written (the image is freed first), else
   * from the image */
  int back = -1;
  if (written) {
    H5Fclose(f);
    mn_err ignored;
    f = mn_h5_open_read(path, &ignored);
    if (f >= 0) back = take_back(f, path, net, opt, sets, nsets, lent, params_hash, opt_hash);
    if (f >= 0) H5Fclose(f);
    if (back != 0) unlink(path); /* it does not hold what was saved */
  } else {
    back = take_back(f, path, net, opt, sets, nsets, lent, params_hash, opt_hash);
    H5Fclose(f);
  }
  if (back != 0)
    return mn_fail(err,
                   "%s: the parameters and optimizer state lent to the checkpoint did not "
                   "come back intact: this run cannot go on",
                   path);
  return rc;
}

static int read_meta(hid_t f, const char *path, mn_ckpt_meta *meta, mn_err *err) {
  memset(meta, 0, sizeof *meta);
  char *format = mn_h5_read_attr_string(f, "format");
  bool ok = format && strcmp(format, "mpinet-checkpoint") == 0;
  free(format);
  if (!ok) return mn_fail(err, "%s: not an mpinet checkpoint (no format attribute)", path);
  long long version;
  if (mn_h5_read_attr_long(f, "format_version", &version) != 0 || version < 1 ||
      version > MN_CHECKPOINT_FORMAT)
    return mn_fail(err,
                   "%s: checkpoint format_version %lld is not understood (this build "
                   "reads 1 to %d)",
                   path, version, MN_CHECKPOINT_FORMAT);
  if (mn_h5_read_attr_long(f, "step", &meta->step) != 0 ||
      mn_h5_read_attr_long(f, "epoch", &meta->epoch) != 0 ||
      mn_h5_read_attr_long(f, "seed", &meta->seed) != 0 ||
      mn_h5_read_attr_long(f, "world_size", &meta->world_size) != 0)
    return mn_fail(err, "%s: checkpoint lacks step/epoch/seed/world_size attributes", path);
  if (mn_h5_read_attr_long(f, "bucket_floats", &meta->bucket_floats) != 0) meta->bucket_floats = 0;
  if (mn_h5_read_attr_long(f, "grad_overlap", &meta->grad_overlap) != 0) meta->grad_overlap = 1;
  meta->config_text = mn_h5_read_attr_string(f, "config");
  meta->data_path = mn_h5_read_attr_string(f, "data_path");
  return version >= 2 ? read_input(f, path, meta, err) : 0;
}

static int read_meta_path(const char *path, mn_ckpt_meta *meta, mn_err *err) {
  mn_h5_quiet();
  hid_t f = mn_h5_open_read(path, err);
  if (f < 0) return -1;
  int rc = read_meta(f, path, meta, err);
  H5Fclose(f);
  return rc;
}

void mn_ckpt_meta_free(mn_ckpt_meta *meta) {
  free(meta->config_text);
  free(meta->data_path);
  free(meta->input_a), free(meta->input_b), free(meta->target_mean), free(meta->target_std);
  free(meta->layout);
  free(meta->residuals), free(meta->compression);
  memset(meta, 0, sizeof *meta);
}

static int load(const char *path, mn_net *net, mn_optimizer *opt, mn_ckpt_meta *meta,
                mn_err *err) {
  mn_h5_quiet();
  hid_t f = mn_h5_open_read(path, err);
  if (f < 0) return -1;
  int rc = read_meta(f, path, meta, err);
  tensor_set sets[8];
  const int nsets = tensor_sets(net, opt, sets);
  for (int k = 0; k < nsets && rc == 0; k++) {
    rc = read_tensors(f, path, sets[k].root, net, sets[k].buf, sets[k].state, sets[k].suffix, -1,
                      err);
    if (rc != 0 && strcmp(sets[k].root, "optimizer") == 0)
      mn_fail_prefix(err, "optimizer state (written with another [train] optimizer or "
                          "momentum setting?)");
  }
  if (rc == 0) rc = check_hash(f, path, "model_hash_fnv1a64", model_hash(net, meta), err);
  if (rc == 0 && opt) rc = check_hash(f, path, "optimizer_hash_fnv1a64", optimizer_hash(opt), err);
  if (rc == 0) rc = read_residuals(f, path, net->nparams, meta, err);
  H5Fclose(f);
  if (rc != 0) mn_ckpt_meta_free(meta);
  return rc;
}

/* The public entry points hold the HDF5 lock: a stream reader may be reading training data
 * on another thread (stream.h). */
int mn_checkpoint_save(const char *path, mn_net *net, mn_optimizer *opt, const mn_ckpt_meta *meta,
                       mn_err *err) {
  mn_h5_lock();
  int rc = save(path, net, opt, meta, err);
  mn_h5_unlock();
  return rc;
}

int mn_checkpoint_read_meta(const char *path, mn_ckpt_meta *meta, mn_err *err) {
  mn_h5_lock();
  int rc = read_meta_path(path, meta, err);
  mn_h5_unlock();
  return rc;
}

int mn_checkpoint_load(const char *path, mn_net *net, mn_optimizer *opt, mn_ckpt_meta *meta,
                       mn_err *err) {
  mn_h5_lock();
  int rc = load(path, net, opt, meta, err);
  mn_h5_unlock();
  return rc;
}
