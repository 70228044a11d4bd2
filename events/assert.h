// Assertions that stay on in every build (release included): a broken
// invariant of the books must stop the process with a message, never go on
// computing money from a state the contract says cannot exist.
#pragma once

#include <cstdio>
#include <cstdlib>

#define FISSION_ASSERT(cond, msg)                                                               \
  do {                                                                                          \
    if (!(cond)) [[unlikely]] {                                                                 \
      std::fprintf(stderr, "fission: invariant broken at %s:%d: %s (%s)\n", __FILE__, __LINE__, \
                   (msg), #cond);                                                               \
      std::abort();                                                                             \
    }                                                                                           \
  } while (0)
