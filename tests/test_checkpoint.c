/* test_checkpoint.c: a checkpoint round-trips parameters and momentum bit-exactly with its
 * metadata; a truncated or bit-flipped file, or one of another model, is refused with a
 * message naming the file; a failed save leaves the earlier file untouched; the pages a save
 * lends to its image come back with the same bits. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "checkpoint.h"
#include "h5util.h"
#include "sha256.h"

static int make_net(mn_net *net, int hidden) {
  char text[256];
  snprintf(text, sizeof text,
           "[layer]\ntype = dense\nunits = %d\nactivation = tanh\n[layer]\ntype = dense\n"
           "units = 4\n",
           hidden);
  mn_config cfg;
  mn_err err;
  int rc = mn_config_parse(&cfg, "c.ini", text, &err) ||
           mn_net_create(net, &cfg, (mn_shape){1, {12}}, 4, MN_LOSS_CROSS_ENTROPY, 2, &err);
  mn_config_free(&cfg);
  return rc;
}

static void flip_byte(const char *path, long offset) {
  FILE *f = fopen(path, "r+b");
  fseek(f, offset, SEEK_SET);
  int c = fgetc(f);
  fseek(f, offset, SEEK_SET);
  fputc(c ^ 0x5a, f);
  fclose(f);
}

/* Saving lends the parameters' and the momentum's pages to the checkpoint's image (a
 * network large enough to have whole pages to lend): after a save, and after a save that
 * fails (missing directory: the pages come back from the image), both hold the same bits. */
static void lent_pages_come_back(const char *dir) {
  mn_net net;
  mn_err err;
  CHECK(make_net(&net, 20000) == 0, "cannot build the network");
  mn_net_init_params(&net, 5);
  mn_optimizer opt = {.kind = MN_OPT_SGD, .momentum = 0.9};
  CHECK(mn_optim_setup(&opt, &net, 32, 10, 1, &err) == 0, "%s", err.msg);
  for (size_t i = 0; i < net.nparams; i++) opt.buf[0][i] = (float)i * 1e-4f - 1.0f;
  const size_t bytes = net.nparams * sizeof(float);
  float *params = malloc(bytes), *momentum = malloc(bytes);
  memcpy(params, net.params, bytes), memcpy(momentum, opt.buf[0], bytes);
  mn_ckpt_meta meta = {.step = 1, .config_text = "", .data_path = "d.h5"};
  char path[600];
  snprintf(path, sizeof path, "%s/big.h5", dir);
  CHECK(mn_checkpoint_save(path, &net, &opt, &meta, &err) == 0, "%s", err.msg);
  CHECK(memcmp(params, net.params, bytes) == 0 && memcmp(momentum, opt.buf[0], bytes) == 0,
        "parameters or momentum changed by a save");
  snprintf(path, sizeof path, "%s/missing/big.h5", dir);
  CHECK(mn_checkpoint_save(path, &net, &opt, &meta, &err) != 0 && !strstr(err.msg, "lent"),
        "save into a missing directory: %s", err.msg);
  CHECK(memcmp(params, net.params, bytes) == 0 && memcmp(momentum, opt.buf[0], bytes) == 0,
        "parameters or momentum changed by a failed save");
  free(params), free(momentum);
  mn_optim_free(&opt);
  mn_net_destroy(&net);
}

/* FIPS 180-4 / NIST example vectors: one block, two blocks (the length spills), many. */
static void sha256_vectors(void) {
  char hex[65];
  mn_sha256_hex("", 0, hex);
  CHECK(strcmp(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855") == 0,
        "sha256('') = %s", hex);
  mn_sha256_hex("abc", 3, hex);
  CHECK(strcmp(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad") == 0,
        "sha256('abc') = %s", hex);
  const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
  mn_sha256_hex(two, strlen(two), hex);
  CHECK(strcmp(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1") == 0,
        "sha256(448 bits) = %s", hex);
  static char million[1000000];
  memset(million, 'a', sizeof million);
  mn_sha256_hex(million, sizeof million, hex);
  CHECK(strcmp(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0") == 0,
        "sha256(10^6 'a') = %s", hex);
}

int main(void) {
  sha256_vectors();
  char dir[] = "/tmp/mpinet-ckpt-XXXXXX", path[600], copy[600], cmd[1300];
  if (!mkdtemp(dir)) return 2;
  snprintf(path, sizeof path, "%s/a.h5", dir);
  mn_net a, b, other;
  mn_err err;
  make_net(&a, 32), make_net(&b, 32), make_net(&other, 16);
  mn_net_init_params(&a, 3);
  /* Adam: two state buffers laid out like the parameters */
  mn_optimizer oa = {.kind = MN_OPT_ADAM}, ob = {.kind = MN_OPT_ADAM};
  CHECK(mn_optim_setup(&oa, &a, 32, 10, 1, &err) == 0 &&
            mn_optim_setup(&ob, &b, 32, 10, 1, &err) == 0,
        "%s", err.msg);
  float *va = oa.buf[0], *vb = ob.buf[0];
  for (size_t i = 0; i < a.nparams; i++) oa.buf[1][i] = (float)i * 2e-3f;
  for (size_t i = 0; i < a.nparams; i++) va[i] = (float)i * 1e-3f;
  /* the input transformation rides along (format 2): values and targets' statistics */
  float in_a[5] = {0.5f, 1, 2, 4, 8}, in_b[5] = {-1, 0, 1, 2, 3}, tm[2] = {300, -2},
        ts[2] = {9.5f, 0.06f};
  mn_ckpt_meta meta = {.step = 42,
                       .epoch = 2,
                       .seed = 3,
                       .world_size = 4,
                       .config_text = "[train]\nlr = 1\n",
                       .data_path = "d.h5",
                       .input_a = in_a,
                       .input_b = in_b,
                       .input_len = 5,
                       .layout = "nhwc",
                       .target_mean = tm,
                       .target_std = ts,
                       .ntargets = 2};
  CHECK(mn_checkpoint_save(path, &a, &oa, &meta, &err) == 0, "%s", err.msg);
  mn_ckpt_meta got;
  CHECK(mn_checkpoint_load(path, &b, &ob, &got, &err) == 0, "%s", err.msg);
  CHECK(got.input_len == 5 && got.input_a && got.input_b && memcmp(got.input_a, in_a, 20) == 0 &&
            memcmp(got.input_b, in_b, 20) == 0 && got.layout && strcmp(got.layout, "nhwc") == 0,
        "the input transformation did not come back");
  CHECK(got.ntargets == 2 && got.target_mean && memcmp(got.target_mean, tm, 8) == 0 &&
            memcmp(got.target_std, ts, 8) == 0,
        "the targets' statistics did not come back");
  CHECK(memcmp(a.params, b.params, a.nparams * sizeof(float)) == 0, "params differ");
  CHECK(memcmp(va, vb, a.nparams * sizeof(float)) == 0, "first moment differs");
  CHECK(memcmp(oa.buf[1], ob.buf[1], a.nparams * sizeof(float)) == 0, "second moment differs");
  CHECK(got.step == 42 && got.epoch == 2 && got.seed == 3 && got.world_size == 4, "meta");
  CHECK(got.config_text && strcmp(got.config_text, meta.config_text) == 0, "config text");
  mn_ckpt_meta_free(&got);

  /* a format 1 checkpoint (no /input) still loads: saved without an input transformation,
   * its version set back to 1 */
  mn_ckpt_meta plain = meta;
  plain.input_a = plain.input_b = plain.target_mean = plain.target_std = NULL;
  plain.layout = NULL;
  CHECK(mn_checkpoint_save(path, &a, &oa, &plain, &err) == 0, "%s", err.msg);
  hid_t old = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
  CHECK(old >= 0 && mn_h5_write_attr_long(old, "format_version", 1) == 0, "cannot set version 1");
  if (old >= 0) H5Fclose(old);
  CHECK(mn_checkpoint_load(path, &b, &ob, &got, &err) == 0 && !got.input_a && !got.target_mean,
        "a format 1 checkpoint: %s", err.msg);
  mn_ckpt_meta_free(&got);
  CHECK(mn_checkpoint_save(path, &a, &oa, &meta, &err) == 0, "%s", err.msg);

  /* an SGD-momentum run cannot resume Adam's state */
  mn_optimizer sgd = {.kind = MN_OPT_SGD, .momentum = 0.9};
  mn_optim_setup(&sgd, &b, 32, 10, 1, &err);
  CHECK(mn_checkpoint_load(path, &b, &sgd, &got, &err) != 0, "Adam state loaded as momentum");
  CHECK(strstr(err.msg, "optimizer state") && strstr(err.msg, "_momentum"), "msg: %s", err.msg);
  mn_optim_free(&sgd);

  CHECK(mn_checkpoint_load(path, &other, NULL, &got, &err) != 0, "other model accepted");
  CHECK(strstr(err.msg, path) && strstr(err.msg, "different model"), "msg: %s", err.msg);

  /* truncation */
  struct stat st;
  stat(path, &st);
  snprintf(copy, sizeof copy, "%s/trunc.h5", dir);
  snprintf(cmd, sizeof cmd, "head -c %lld %s > %s", (long long)st.st_size / 2, path, copy);
  CHECK(system(cmd) == 0, "head");
  CHECK(mn_checkpoint_load(copy, &b, &ob, &got, &err) != 0, "truncated file accepted");
  CHECK(strstr(err.msg, copy) != NULL, "msg: %s", err.msg);

  /* a flipped byte inside any stored tensor is refused (Fletcher32 per chunk) */
  snprintf(copy, sizeof copy, "%s/flip.h5", dir);
  const char *tensors[] = {"/params/00_dense/W", "/params/01_dense/b",
                           "/optimizer/00_dense/W_adam_v"};
  for (int i = 0; i < 3; i++) {
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    hid_t d = H5Dopen2(f, tensors[i], H5P_DEFAULT);
    hsize_t chunk_off[2] = {0, 0}, size = 0;
    haddr_t addr = 0;
    unsigned mask;
    hid_t space = H5Dget_space(d);
    herr_t info = H5Dget_chunk_info(d, space, 0, chunk_off, &mask, &addr, &size);
    H5Sclose(space);
    H5Dclose(d);
    CHECK(info >= 0, "no chunk info for %s", tensors[i]);
    H5Fclose(f);
    snprintf(cmd, sizeof cmd, "cp %s %s", path, copy);
    CHECK(system(cmd) == 0 && size > 8, "cp / chunk info for %s", tensors[i]);
    flip_byte(copy, (long)(addr + size / 2));
    CHECK(mn_checkpoint_load(copy, &b, &ob, &got, &err) != 0, "flip inside %s accepted",
          tensors[i]);
    CHECK(strstr(err.msg, copy) != NULL, "msg: %s", err.msg);
  }
  /* a flip anywhere in the file is either refused or harmless: never wrong values */
  int refused = 0, tried = 0, wrong = 0;
  for (long off = 0; off < st.st_size; off += st.st_size / 64 + 1) {
    snprintf(cmd, sizeof cmd, "cp %s %s", path, copy);
    if (system(cmd) != 0) break;
    flip_byte(copy, off);
    tried++;
    memset(b.params, 0, b.nparams * sizeof(float));
    if (mn_checkpoint_load(copy, &b, &ob, &got, &err) != 0) {
      refused++;
      continue;
    }
    mn_ckpt_meta_free(&got);
    wrong += memcmp(a.params, b.params, a.nparams * sizeof(float)) != 0 ||
             memcmp(va, vb, a.nparams * sizeof(float)) != 0;
  }
  CHECK(wrong == 0, "%d of %d corrupted files loaded wrong values", wrong, tried);
  printf("byte flips: %d of %d refused, the rest hit unused space and loaded correctly\n", refused,
         tried);

  /* a save into a missing directory fails and does not touch the good file */
  snprintf(copy, sizeof copy, "%s/missing/dir/x.h5", dir);
  CHECK(mn_checkpoint_save(copy, &a, &oa, &meta, &err) != 0, "save into missing dir succeeded");
  CHECK(mn_checkpoint_load(path, &b, &ob, &got, &err) == 0, "good file damaged: %s", err.msg);
  mn_ckpt_meta_free(&got);

  lent_pages_come_back(dir);
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  if (system(cmd) != 0) return 2;
  mn_optim_free(&oa), mn_optim_free(&ob);
  mn_net_destroy(&a), mn_net_destroy(&b), mn_net_destroy(&other);
  return check_report("test_checkpoint");
}
