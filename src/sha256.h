/* sha256.h: SHA-256 (FIPS 180-4), for the one hash users compare across machines and tools:
 * the parameters' digest at the end of a run and in every checkpoint, which `sha256sum` of
 * the raw little-endian float32 buffer reproduces. */
#ifndef MN_SHA256_H
#define MN_SHA256_H

#include <stddef.h>
#include <stdint.h>

/* 64 hex digits and a NUL. */
void mn_sha256_hex(const void *data, size_t n, char out[65]);

#endif
