/* clones.h: AVX-512 and AVX2 versions of a few loops that stream memory, picked when the
 * program loads (the build itself targets baseline x86-64, so the binary runs anywhere).
 * GCC's ISO C mode does not contract a * b + c into FMA, so every version computes the same
 * bits. Elsewhere the macro is empty. */
#ifndef MN_CLONES_H
#define MN_CLONES_H

#if defined(__x86_64__) && defined(__GNUC__) && defined(__linux__)
#define MN_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define MN_CLONES
#endif

#endif
