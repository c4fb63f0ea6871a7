/* config.h: the INI job configuration, with errors that name file, line, section and key.
 *
 * Parsed with libinih through a line reader of our own, which gives every key its line
 * number and tells repeated [layer] sections apart. Every getter marks its key as used;
 * mn_config_check_unused() then turns any key nobody asked for into an error, so a typo
 * (`lerning_rate = 0.1`) stops the job instead of being silently ignored. */
#ifndef MN_CONFIG_H
#define MN_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "error.h"

typedef struct {
  char *key;
  char *value;
  int line; /* 0: came from --set */
  bool used;
} mn_cfg_entry;

typedef struct mn_config mn_config;

typedef struct {
  char name[64];
  int line;
  int ordinal; /* 1-based among sections of the same name ([layer] 1, 2, ...) */
  mn_cfg_entry *entries;
  int count, cap;
  const mn_config *owner;
} mn_cfg_section;

struct mn_config {
  char path[512];
  mn_cfg_section *sections;
  int count, cap;
};

/* Parses INI text; `path` is only used in messages. On failure nothing stays allocated
 * (mn_config_free is then a harmless no-op). */
int mn_config_parse(mn_config *cfg, const char *path, const char *text, mn_err *err);
int mn_config_load_file(mn_config *cfg, const char *path, mn_err *err);
/* Applies one `section.key=value` override (`layerN.key=value` for the N-th [layer]). */
int mn_config_set(mn_config *cfg, const char *assignment, mn_err *err);
void mn_config_free(mn_config *cfg);

/* The unique section `name`, or NULL. */
mn_cfg_section *mn_config_section(const mn_config *cfg, const char *name);
/* Fails on any key no getter asked for, and on sections not in `known` (NULL-terminated). */
int mn_config_check_unused(const mn_config *cfg, const char *const *known, mn_err *err);
/* Writes the effective configuration (overrides applied) as INI text; caller frees. */
char *mn_config_to_text(const mn_config *cfg);

/* "file:12: [train] lr" or "--set: [train] lr": where a key came from, for messages. */
void mn_cfg_where(const mn_cfg_section *s, const mn_cfg_entry *e, char *buf, size_t len);

/* Typed getters. A missing key yields the default; a present but malformed or out-of-range
 * one is an error naming file, line, section and key. `s` may be NULL (section absent). */
int mn_cfg_int(mn_cfg_section *s, const char *key, long def, long min, long max, long *out,
               mn_err *err);
int mn_cfg_double(mn_cfg_section *s, const char *key, double def, double min, double max,
                  double *out, mn_err *err);
int mn_cfg_bool(mn_cfg_section *s, const char *key, bool def, bool *out, mn_err *err);
int mn_cfg_string(mn_cfg_section *s, const char *key, const char *def, const char **out,
                  mn_err *err);
/* Picks one of `choices` (NULL-terminated); *out is its index. def < 0: key required. */
int mn_cfg_choice(mn_cfg_section *s, const char *key, const char *const *choices, int def, int *out,
                  mn_err *err);
/* The entry for key, or NULL (does not mark it used). */
mn_cfg_entry *mn_cfg_find(const mn_cfg_section *s, const char *key);
/* True if the key is present (does not mark it used). */
bool mn_cfg_has(const mn_cfg_section *s, const char *key);

#endif
