/* config.c: INI parsing on top of libinih, typed getters, overrides and unused-key checks. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fileutil.h"

typedef struct {
  mn_config *cfg;
  const char *pos; /* next unread byte of the text */
  int line;        /* number of the line inih is handling */
  mn_err *err;
  bool failed;
} parse_ctx;

static char *dup_str(const char *s) {
  size_t n = strlen(s) + 1;
  char *p = malloc(n);
  if (p) memcpy(p, s, n);
  return p;
}

static mn_cfg_section *add_section(mn_config *cfg, const char *name, int line);

/* libinih calls this once per line: we count lines and section headers here, so the
 * handler knows the line number and which of several same-named sections it is in. */
static char *reader(char *str, int num, void *stream) {
  parse_ctx *ctx = stream;
  if (ctx->failed || *ctx->pos == '\0') return NULL;
  const char *end = strchr(ctx->pos, '\n');
  size_t len = end ? (size_t)(end - ctx->pos) + 1 : strlen(ctx->pos);
  ctx->line++;
  if (len >= (size_t)num) {
    mn_fail(ctx->err, "%s:%d: line longer than %d characters", ctx->cfg->path, ctx->line, num - 2);
    ctx->failed = true;
    return NULL;
  }
  memcpy(str, ctx->pos, len);
  str[len] = '\0';
  ctx->pos += len;
  const char *p = str;
  while (*p == ' ' || *p == '\t') p++;
  const char *close = *p == '[' ? strchr(p, ']') : NULL;
  if (close) { /* a malformed header is left for inih to report */
    char name[64];
    size_t n = (size_t)(close - p - 1);
    if (n >= sizeof name) n = sizeof name - 1;
    memcpy(name, p + 1, n);
    name[n] = '\0';
    if (!add_section(ctx->cfg, name, ctx->line)) {
      mn_fail(ctx->err, "%s: out of memory", ctx->cfg->path);
      ctx->failed = true;
      return NULL;
    }
  }
  return str;
}

static mn_cfg_section *add_section(mn_config *cfg, const char *name, int line) {
  if (cfg->count == cfg->cap) {
    int cap = cfg->cap ? cfg->cap * 2 : 8;
    mn_cfg_section *s = realloc(cfg->sections, (size_t)cap * sizeof *s);
    if (!s) return NULL;
    cfg->sections = s;
    cfg->cap = cap;
  }
  mn_cfg_section *s = &cfg->sections[cfg->count++];
  memset(s, 0, sizeof *s);
  snprintf(s->name, sizeof s->name, "%s", name);
  s->line = line;
  s->owner = cfg;
  for (int i = 0; i < cfg->count - 1; i++)
    if (strcmp(cfg->sections[i].name, name) == 0) s->ordinal++;
  s->ordinal++;
  return s;
}

static mn_cfg_entry *find_entry(const mn_cfg_section *s, const char *key) {
  if (!s) return NULL;
  for (int i = 0; i < s->count; i++)
    if (strcmp(s->entries[i].key, key) == 0) return &s->entries[i];
  return NULL;
}

static int add_entry(mn_cfg_section *s, const char *key, const char *value, int line) {
  if (s->count == s->cap) {
    int cap = s->cap ? s->cap * 2 : 8;
    mn_cfg_entry *e = realloc(s->entries, (size_t)cap * sizeof *e);
    if (!e) return -1;
    s->entries = e;
    s->cap = cap;
  }
  mn_cfg_entry *e = &s->entries[s->count];
  e->key = dup_str(key);
  e->value = dup_str(value);
  e->line = line;
  e->used = false;
  if (!e->key || !e->value) return -1;
  s->count++;
  return 0;
}

static int handler(void *user, const char *section, const char *name, const char *value) {
  parse_ctx *ctx = user;
  mn_config *cfg = ctx->cfg;
  if (ctx->failed) return 0;
  if (section[0] == '\0') {
    mn_fail(ctx->err, "%s:%d: key '%s' appears before any [section]", cfg->path, ctx->line, name);
    ctx->failed = true;
    return 0;
  }
  /* The reader registers each header line; should inih see a section it did not (a header
   * behind a byte-order mark, say), the section starts here (found by jobs/fuzz). */
  if (cfg->count == 0 || strcmp(cfg->sections[cfg->count - 1].name, section) != 0) {
    if (!add_section(cfg, section, ctx->line)) {
      mn_fail(ctx->err, "%s: out of memory", cfg->path);
      ctx->failed = true;
      return 0;
    }
  }
  mn_cfg_section *s = &cfg->sections[cfg->count - 1];
  if (find_entry(s, name)) {
    mn_fail(ctx->err, "%s:%d: [%s] key '%s' given twice", cfg->path, ctx->line, section, name);
    ctx->failed = true;
    return 0;
  }
  if (add_entry(s, name, value, ctx->line) != 0) {
    mn_fail(ctx->err, "%s: out of memory", cfg->path);
    ctx->failed = true;
    return 0;
  }
  return 1;
}

/* The parse proper; on failure cfg may hold partial sections (mn_config_parse frees them). */
static int parse(mn_config *cfg, const char *path, const char *text, mn_err *err) {
  parse_ctx ctx = {.cfg = cfg, .pos = text, .err = err};
  int rc = ini_parse_stream(reader, &ctx, handler, &ctx);
  if (ctx.failed) return -1;
  if (rc > 0)
    return mn_fail(err,
                   "%s:%d: cannot parse line (expected '[section]', "
                   "'key = value' or a comment)",
                   path, rc);
  if (rc < 0) return mn_fail(err, "%s: cannot parse (libinih error %d)", path, rc);
  for (int i = 0; i < cfg->count; i++)
    for (int j = 0; j < i; j++)
      if (strcmp(cfg->sections[i].name, "layer") != 0 &&
          strcmp(cfg->sections[i].name, cfg->sections[j].name) == 0)
        return mn_fail(err, "%s:%d: section [%s] given twice (only [layer] may repeat)", path,
                       cfg->sections[i].line, cfg->sections[i].name);
  return 0;
}

int mn_config_parse(mn_config *cfg, const char *path, const char *text, mn_err *err) {
  memset(cfg, 0, sizeof *cfg);
  snprintf(cfg->path, sizeof cfg->path, "%s", path);
  if (parse(cfg, path, text, err) == 0) return 0;
  mn_config_free(cfg); /* a failed parse leaves nothing to free (found by jobs/fuzz) */
  return -1;
}

int mn_config_load_file(mn_config *cfg, const char *path, mn_err *err) {
  char *text = mn_read_file(path, 1 << 20, err);
  if (!text) return mn_fail_prefix(err, "config");
  int rc = mn_config_parse(cfg, path, text, err);
  free(text);
  return rc;
}

int mn_config_set(mn_config *cfg, const char *assignment, mn_err *err) {
  const char *dot = strchr(assignment, '.');
  const char *eq = strchr(assignment, '=');
  if (!dot || !eq || dot > eq || dot == assignment || eq == dot + 1)
    return mn_fail(err, "--set %s: expected section.key=value", assignment);
  char section[64], key[128];
  size_t sl = (size_t)(dot - assignment), kl = (size_t)(eq - dot - 1);
  if (sl >= sizeof section || kl >= sizeof key)
    return mn_fail(err, "--set %s: section or key too long", assignment);
  memcpy(section, assignment, sl);
  section[sl] = '\0';
  memcpy(key, dot + 1, kl);
  key[kl] = '\0';
  const char *value = eq + 1;

  mn_cfg_section *s = NULL;
  if (strncmp(section, "layer", 5) == 0 && isdigit((unsigned char)section[5])) {
    long n = strtol(section + 5, NULL, 10);
    for (int i = 0; i < cfg->count; i++)
      if (strcmp(cfg->sections[i].name, "layer") == 0 && cfg->sections[i].ordinal == n)
        s = &cfg->sections[i];
    if (!s) return mn_fail(err, "--set %s: the config has no layer %ld", assignment, n);
  } else if (strcmp(section, "layer") == 0) {
    return mn_fail(err, "--set %s: say which layer, e.g. layer2.%s=...", assignment, key);
  } else {
    s = mn_config_section(cfg, section);
    if (!s) {
      s = add_section(cfg, section, 0);
      if (!s) return mn_fail(err, "--set: out of memory");
    }
  }
  mn_cfg_entry *e = find_entry(s, key);
  if (e) {
    char *v = dup_str(value);
    if (!v) return mn_fail(err, "--set: out of memory");
    free(e->value);
    e->value = v;
    e->line = 0;
    return 0;
  }
  if (add_entry(s, key, value, 0) != 0) return mn_fail(err, "--set: out of memory");
  return 0;
}

void mn_config_free(mn_config *cfg) {
  for (int i = 0; i < cfg->count; i++) {
    for (int j = 0; j < cfg->sections[i].count; j++) {
      free(cfg->sections[i].entries[j].key);
      free(cfg->sections[i].entries[j].value);
    }
    free(cfg->sections[i].entries);
  }
  free(cfg->sections);
  memset(cfg, 0, sizeof *cfg);
}

mn_cfg_section *mn_config_section(const mn_config *cfg, const char *name) {
  for (int i = 0; i < cfg->count; i++)
    if (strcmp(cfg->sections[i].name, name) == 0) return &cfg->sections[i];
  return NULL;
}

static void section_label(const mn_cfg_section *s, char *buf, size_t len) {
  if (strcmp(s->name, "layer") == 0)
    snprintf(buf, len, "[layer %d]", s->ordinal);
  else
    snprintf(buf, len, "[%s]", s->name);
}

void mn_cfg_where(const mn_cfg_section *s, const mn_cfg_entry *e, char *buf, size_t len) {
  char label[80];
  section_label(s, label, sizeof label);
  if (!e)
    snprintf(buf, len, "%s:%d: %s", s->owner->path, s->line, label);
  else if (e->line > 0)
    snprintf(buf, len, "%s:%d: %s %s", s->owner->path, e->line, label, e->key);
  else if (strcmp(s->name, "layer") == 0)
    snprintf(buf, len, "--set layer%d.%s", s->ordinal, e->key);
  else
    snprintf(buf, len, "--set %s.%s", s->name, e->key);
}

int mn_config_check_unused(const mn_config *cfg, const char *const *known, mn_err *err) {
  for (int i = 0; i < cfg->count; i++) {
    const mn_cfg_section *s = &cfg->sections[i];
    bool ok = false;
    for (const char *const *k = known; *k; k++)
      if (strcmp(*k, s->name) == 0) ok = true;
    if (!ok) {
      char known_list[256] = "";
      for (const char *const *k = known; *k; k++) {
        strncat(known_list, *k, sizeof known_list - strlen(known_list) - 1);
        if (k[1]) strncat(known_list, ", ", sizeof known_list - strlen(known_list) - 1);
      }
      if (s->line > 0)
        return mn_fail(err, "%s:%d: unknown section [%s] (known: %s)", cfg->path, s->line, s->name,
                       known_list);
      return mn_fail(err, "--set: unknown section '%s' (known: %s)", s->name, known_list);
    }
    for (int j = 0; j < s->count; j++)
      if (!s->entries[j].used) {
        char where[700];
        mn_cfg_where(s, &s->entries[j], where, sizeof where);
        return mn_fail(err, "%s: unknown key", where);
      }
  }
  return 0;
}

char *mn_config_to_text(const mn_config *cfg) {
  size_t cap = 256;
  for (int i = 0; i < cfg->count; i++) {
    cap += strlen(cfg->sections[i].name) + 4;
    for (int j = 0; j < cfg->sections[i].count; j++)
      cap +=
          strlen(cfg->sections[i].entries[j].key) + strlen(cfg->sections[i].entries[j].value) + 8;
  }
  char *out = malloc(cap);
  if (!out) return NULL;
  size_t n = 0;
  for (int i = 0; i < cfg->count; i++) {
    n += (size_t)snprintf(out + n, cap - n, "%s[%s]\n", i ? "\n" : "", cfg->sections[i].name);
    for (int j = 0; j < cfg->sections[i].count; j++)
      n += (size_t)snprintf(out + n, cap - n, "%s = %s\n", cfg->sections[i].entries[j].key,
                            cfg->sections[i].entries[j].value);
  }
  return out;
}

bool mn_cfg_has(const mn_cfg_section *s, const char *key) { return find_entry(s, key) != NULL; }

mn_cfg_entry *mn_cfg_find(const mn_cfg_section *s, const char *key) { return find_entry(s, key); }

/* Looks up a key, marks it used and formats its location for messages. */
static mn_cfg_entry *lookup(mn_cfg_section *s, const char *key, char *where, size_t len) {
  mn_cfg_entry *e = find_entry(s, key);
  if (e) {
    e->used = true;
    mn_cfg_where(s, e, where, len);
  }
  return e;
}

int mn_cfg_int(mn_cfg_section *s, const char *key, long def, long min, long max, long *out,
               mn_err *err) {
  char where[700];
  mn_cfg_entry *e = lookup(s, key, where, sizeof where);
  if (!e) {
    *out = def;
    return 0;
  }
  char *end;
  errno = 0;
  long v = strtol(e->value, &end, 10);
  while (*end == ' ' || *end == '\t') end++;
  if (e->value[0] == '\0' || *end != '\0' || errno)
    return mn_fail(err, "%s: '%s' is not an integer", where, e->value);
  if (v < min || v > max)
    return mn_fail(err, "%s: %ld is out of range [%ld, %ld]", where, v, min, max);
  *out = v;
  return 0;
}

int mn_cfg_double(mn_cfg_section *s, const char *key, double def, double min, double max,
                  double *out, mn_err *err) {
  char where[700];
  mn_cfg_entry *e = lookup(s, key, where, sizeof where);
  if (!e) {
    *out = def;
    return 0;
  }
  char *end;
  errno = 0;
  double v = strtod(e->value, &end);
  while (*end == ' ' || *end == '\t') end++;
  if (e->value[0] == '\0' || *end != '\0' || errno || !isfinite(v))
    return mn_fail(err, "%s: '%s' is not a finite number", where, e->value);
  if (v < min || v > max)
    return mn_fail(err, "%s: %g is out of range [%g, %g]", where, v, min, max);
  *out = v;
  return 0;
}

int mn_cfg_bool(mn_cfg_section *s, const char *key, bool def, bool *out, mn_err *err) {
  static const char *const choices[] = {"false", "true", "no", "yes", "0", "1", "off", "on", NULL};
  int idx;
  if (mn_cfg_choice(s, key, choices, def ? 1 : 0, &idx, err) != 0) return -1;
  *out = idx % 2 == 1;
  return 0;
}

int mn_cfg_string(mn_cfg_section *s, const char *key, const char *def, const char **out,
                  mn_err *err) {
  char where[700];
  mn_cfg_entry *e = lookup(s, key, where, sizeof where);
  if (!e) {
    if (!def) {
      if (!s) return mn_fail(err, "missing key '%s'", key);
      char label[700];
      mn_cfg_where(s, NULL, label, sizeof label);
      return mn_fail(err, "%s: missing key '%s'", label, key);
    }
    *out = def;
    return 0;
  }
  if (e->value[0] == '\0') return mn_fail(err, "%s: empty value", where);
  *out = e->value;
  return 0;
}

int mn_cfg_choice(mn_cfg_section *s, const char *key, const char *const *choices, int def, int *out,
                  mn_err *err) {
  char where[700];
  mn_cfg_entry *e = lookup(s, key, where, sizeof where);
  if (!e) {
    if (def < 0) {
      char label[700] = "config";
      if (s) mn_cfg_where(s, NULL, label, sizeof label);
      return mn_fail(err, "%s: missing key '%s'", label, key);
    }
    *out = def;
    return 0;
  }
  char list[512] = "";
  for (int i = 0; choices[i]; i++) {
    if (strcmp(choices[i], e->value) == 0) {
      *out = i;
      return 0;
    }
    strncat(list, choices[i], sizeof list - strlen(list) - 1);
    if (choices[i + 1]) strncat(list, ", ", sizeof list - strlen(list) - 1);
  }
  return mn_fail(err, "%s: '%s' is not one of: %s", where, e->value, list);
}
