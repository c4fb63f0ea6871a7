/* hash.h: FNV-1a, 64 bits: the one content hash mpinet uses (replica checks, checkpoint
 * content hashes, the start-up agreement check). Not cryptographic: it detects accidents. */
#ifndef MN_HASH_H
#define MN_HASH_H

#include <stddef.h>
#include <stdint.h>

#define MN_FNV_SEED 0xcbf29ce484222325ULL

/* Continues the hash h over n bytes (start with MN_FNV_SEED). */
static inline uint64_t mn_fnv1a64(uint64_t h, const void *data, size_t n) {
  const unsigned char *p = data;
  for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ULL;
  return h;
}

#endif
