/* fuzz_replay.c: runs a libFuzzer target's function over files (the seed corpus and every
 * input that once crashed it), without libFuzzer, so CTest keeps them as regression inputs
 * under the normal and the sanitizer builds.  usage: fuzz_replay_X FILE... */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int main(int argc, char **argv) {
  int n = 0;
  for (int i = 1; i < argc; i++) {
    FILE *f = fopen(argv[i], "rb");
    if (!f) {
      fprintf(stderr, "fuzz_replay: cannot open %s\n", argv[i]);
      return 2;
    }
    static uint8_t buf[1 << 22];
    size_t len = fread(buf, 1, sizeof buf, f);
    fclose(f);
    LLVMFuzzerTestOneInput(buf, len);
    n++;
  }
  printf("replayed %d inputs\n", n);
  return n > 0 ? 0 : 2;
}
