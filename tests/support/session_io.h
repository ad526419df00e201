// What a dispatcher does with a server::Session's output, for tests: take
// all of it, as if one write had sent it.
#pragma once

#include <sys/uio.h>

#include "server/session.h"
#include "tests/support/frame_builder.h"

namespace h2lab::testing {

// Everything pending_output() holds, concatenated, then on_written() of it.
inline ByteString take_output(server::Session& s) {
  ByteString out = concat(s.pending_output());
  s.on_written(out.size());
  return out;
}

}  // namespace h2lab::testing
