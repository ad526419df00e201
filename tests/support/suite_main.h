// The main() of the suites that run once per dispatcher and engine
// (dispatch_test, slow_peer_test): Catch2 with --dispatch NAME and
// --engine NAME. Include after <catch2/catch.hpp> in the file that defines
// CATCH_CONFIG_RUNNER.
#pragma once

#include <cstdio>
#include <string>
#include <vector>

#include "server/options.h"

namespace h2lab::testing {

// What the command line chose: every dispatcher unless --dispatch names
// one; full unless --engine names another. mini cannot run these suites
// (it answers Hello World only) and is refused.
struct SuiteChoice {
  std::vector<server::Dispatch> dispatchers;
  server::EngineKind engine = server::EngineKind::kFull;
};

// Parses the options into `choice` and runs the tests; returns main()'s status.
inline int run_suite(int argc, char** argv, SuiteChoice& choice) {
  Catch::Session session;
  std::string dispatch;
  std::string engine = "full";
  using Catch::clara::Opt;
  session.cli(session.cli() |
              Opt(dispatch, "name")["--dispatch"]("the dispatcher to test (default: every one)") |
              Opt(engine, "name")["--engine"]("the engine behind it (default: full)"));
  if (const int rc = session.applyCommandLine(argc, argv); rc != 0) return rc;
  if (const auto e = server::parse_engine(engine); e && *e != server::EngineKind::kMini) {
    choice.engine = *e;
  } else {
    std::fprintf(stderr, "engine '%s' cannot run this suite; valid: full, nghttp2\n", engine.c_str());
    return 2;
  }
  if (dispatch.empty()) {
    choice.dispatchers = {server::Dispatch::kBlocking, server::Dispatch::kThreaded,
                          server::Dispatch::kEpoll, server::Dispatch::kUring};
  } else if (const auto d = server::parse_dispatch(dispatch)) {
    choice.dispatchers = {*d};
  } else {
    std::fprintf(stderr, "unknown dispatcher '%s'; valid: %s\n", dispatch.c_str(),
                 server::dispatch_choices().c_str());
    return 2;
  }
  return session.run();
}

}  // namespace h2lab::testing
