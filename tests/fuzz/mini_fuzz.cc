// mini_fuzz: the seed's simplified engine (proto::MiniEngine) through the
// same driver as connection_fuzz (engine_driver.h: script and invariants).
// MiniEngine promises no high-water mark: it answers each request frame at
// once with a fixed 41-octet response, so its output bound is per input
// octet (41 octets for a 9-octet frame) plus its SETTINGS and GOAWAY.
#include <cstddef>
#include <cstdint>

#include "proto/mini_engine.h"
#include "tests/fuzz/engine_driver.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace h2lab;
  fuzz::FuzzInput in(data, size);
  proto::MiniEngine engine;
  fuzz::EngineBounds bounds;
  bounds.high_water = SIZE_MAX;
  bounds.per_input_octet = 5;  // 41 / 9, rounded up
  bounds.slack = 256;
  fuzz::EngineDriver(engine, bounds).run(in);
  return 0;
}
