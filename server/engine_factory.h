// The engine a new connection gets, as the options name it.
#pragma once

#include <memory>

#include "proto/engine.h"
#include "server/options.h"

namespace h2lab::server {

// A fresh engine for one connection. The full engine's output high-water
// mark is the session's backpressure bound, so bodies stop being produced
// exactly where the session stops reading.
std::unique_ptr<proto::Engine> make_engine(const ServerOptions& options);

}  // namespace h2lab::server
