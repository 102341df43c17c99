// What the fuzz targets share: FUZZ_CHECK, an invariant whose failure is a crash libFuzzer records.
#pragma once

#include <cstdio>
#include <cstdlib>

// Aborts, saying which invariant failed, unless `cond` holds.
#define FUZZ_CHECK(cond, what)                                                              \
  do {                                                                                      \
    if (!(cond)) {                                                                          \
      std::fprintf(stderr, "%s:%d: invariant failed: %s (%s)\n", __FILE__, __LINE__, #cond, \
                   what);                                                                   \
      std::abort();                                                                         \
    }                                                                                       \
  } while (0)
