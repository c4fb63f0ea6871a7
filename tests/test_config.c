/* test_config.c: the INI config: values, line numbers in errors, repeated [layer]
 * sections, --set overrides, unknown keys and sections, malformed values. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "config.h"

static const char *const known[] = {"data", "train", "layer", NULL};

static const char *text = "; a comment\n"
                          "[data]\n"
                          "path = data/x.h5   ; inline comment\n"
                          "\n"
                          "[train]\n"
                          "lr = 0.5\n"
                          "epochs = 3\n"
                          "[layer]\n"
                          "units = 10\n"
                          "[layer]\n"
                          "units = 20\n";

static void test_values_and_layers(void) {
  mn_config cfg;
  mn_err err;
  CHECK(mn_config_parse(&cfg, "job.ini", text, &err) == 0, "%s", err.msg);
  const char *path;
  double lr;
  long epochs, u1 = 0, u2 = 0;
  CHECK(mn_cfg_string(mn_config_section(&cfg, "data"), "path", NULL, &path, &err) == 0, "%s",
        err.msg);
  CHECK(strcmp(path, "data/x.h5") == 0, "path = '%s'", path);
  mn_cfg_section *train = mn_config_section(&cfg, "train");
  CHECK(mn_cfg_double(train, "lr", 0, 0, 10, &lr, &err) == 0 && lr == 0.5, "lr %g", lr);
  CHECK(mn_cfg_int(train, "epochs", 0, 1, 10, &epochs, &err) == 0 && epochs == 3, "epochs");
  int layers = 0;
  for (int i = 0; i < cfg.count; i++)
    if (strcmp(cfg.sections[i].name, "layer") == 0) {
      layers++;
      mn_cfg_int(&cfg.sections[i], "units", 0, 1, 100, layers == 1 ? &u1 : &u2, &err);
    }
  CHECK(layers == 2 && u1 == 10 && u2 == 20, "layers %d units %ld %ld", layers, u1, u2);
  CHECK(mn_config_check_unused(&cfg, known, &err) == 0, "%s", err.msg);
  mn_config_free(&cfg);
}

static void test_unknown_key_names_line(void) {
  mn_config cfg;
  mn_err err;
  mn_config_parse(&cfg, "job.ini", "[train]\nlr = 1\nlerning_rate = 2\n", &err);
  double lr;
  mn_cfg_double(mn_config_section(&cfg, "train"), "lr", 0, 0, 10, &lr, &err);
  CHECK(mn_config_check_unused(&cfg, known, &err) != 0, "typo accepted");
  CHECK(strstr(err.msg, "job.ini:3") && strstr(err.msg, "lerning_rate"), "msg: %s", err.msg);
  mn_config_free(&cfg);
}

static void test_unknown_section(void) {
  mn_config cfg;
  mn_err err;
  mn_config_parse(&cfg, "job.ini", "[trian]\nlr = 1\n", &err);
  CHECK(mn_config_check_unused(&cfg, known, &err) != 0, "unknown section accepted");
  CHECK(strstr(err.msg, "job.ini:1") && strstr(err.msg, "[trian]"), "msg: %s", err.msg);
  mn_config_free(&cfg);
}

static void test_bad_value_and_range(void) {
  mn_config cfg;
  mn_err err;
  mn_config_parse(&cfg, "job.ini", "[train]\nlr = fast\nepochs = -1\n", &err);
  double lr;
  long epochs;
  mn_cfg_section *t = mn_config_section(&cfg, "train");
  CHECK(mn_cfg_double(t, "lr", 0, 0, 10, &lr, &err) != 0, "accepted lr = fast");
  CHECK(strstr(err.msg, "job.ini:2") && strstr(err.msg, "lr") && strstr(err.msg, "fast"), "msg: %s",
        err.msg);
  CHECK(mn_cfg_int(t, "epochs", 1, 1, 10, &epochs, &err) != 0, "accepted epochs = -1");
  CHECK(strstr(err.msg, "job.ini:3") && strstr(err.msg, "out of range"), "msg: %s", err.msg);
  mn_config_free(&cfg);
}

static void test_syntax_errors(void) {
  mn_config cfg;
  mn_err err;
  CHECK(mn_config_parse(&cfg, "job.ini", "[train]\nlr 0.1\n", &err) != 0, "no '=' accepted");
  CHECK(strstr(err.msg, "job.ini:2"), "msg: %s", err.msg);
  mn_config_free(&cfg);
  CHECK(mn_config_parse(&cfg, "job.ini", "[train]\nlr = 1\nlr = 2\n", &err) != 0,
        "duplicate key accepted");
  CHECK(strstr(err.msg, "job.ini:3") && strstr(err.msg, "twice"), "msg: %s", err.msg);
  mn_config_free(&cfg);
  CHECK(mn_config_parse(&cfg, "job.ini", "[train]\n[train]\n", &err) != 0,
        "duplicate section accepted");
  mn_config_free(&cfg);
  CHECK(mn_config_parse(&cfg, "job.ini", "lr = 1\n", &err) != 0, "key outside section");
  mn_config_free(&cfg);
}

static void test_overrides(void) {
  mn_config cfg;
  mn_err err;
  mn_config_parse(&cfg, "job.ini", text, &err);
  CHECK(mn_config_set(&cfg, "train.lr=0.25", &err) == 0, "%s", err.msg);
  CHECK(mn_config_set(&cfg, "layer2.units=7", &err) == 0, "%s", err.msg);
  CHECK(mn_config_set(&cfg, "checkpoint.dir=/tmp/x", &err) == 0, "new section: %s", err.msg);
  CHECK(mn_config_set(&cfg, "layer9.units=7", &err) != 0, "layer9 accepted");
  CHECK(mn_config_set(&cfg, "nodot", &err) != 0, "malformed accepted");
  double lr;
  long u;
  mn_cfg_double(mn_config_section(&cfg, "train"), "lr", 0, 0, 10, &lr, &err);
  CHECK(lr == 0.25, "lr %g", lr);
  mn_cfg_section *l2 = NULL;
  for (int i = 0; i < cfg.count; i++)
    if (strcmp(cfg.sections[i].name, "layer") == 0 && cfg.sections[i].ordinal == 2)
      l2 = &cfg.sections[i];
  CHECK(l2 && mn_cfg_int(l2, "units", 0, 1, 100, &u, &err) == 0 && u == 7, "layer2 units");
  /* an override that is wrong is reported as coming from --set */
  mn_config_set(&cfg, "train.epochs=many", &err);
  long e;
  CHECK(mn_cfg_int(mn_config_section(&cfg, "train"), "epochs", 1, 1, 9, &e, &err) != 0 &&
            strstr(err.msg, "--set train.epochs"),
        "msg: %s", err.msg);
  char *round = mn_config_to_text(&cfg);
  CHECK(round && strstr(round, "lr = 0.25") && strstr(round, "[checkpoint]"), "text: %s", round);
  mn_config reparsed;
  CHECK(mn_config_parse(&reparsed, "copy.ini", round, &err) == 0, "round trip: %s", err.msg);
  CHECK(reparsed.count == cfg.count, "sections %d vs %d", reparsed.count, cfg.count);
  mn_config_free(&reparsed);
  free(round);
  mn_config_free(&cfg);
}

int main(void) {
  test_values_and_layers();
  test_unknown_key_names_line();
  test_unknown_section();
  test_bad_value_and_range();
  test_syntax_errors();
  test_overrides();
  return check_report("test_config");
}
