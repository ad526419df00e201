// Invariant checks for the fuzz targets: they must hold in every build, -c opt
// (NDEBUG) included, because the replay tests run the same code under the
// default optimised configuration. A violation prints what failed and aborts,
// which libFuzzer reports as a crash and saves as a reproducer.
#pragma once

#include <cstdio>
#include <cstdlib>

#define FUZZ_CHECK(cond)                                                                     \
  do {                                                                                       \
    if (!(cond)) {                                                                           \
      std::fprintf(stderr, "%s:%d: fuzz invariant failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                          \
    }                                                                                        \
  } while (false)
