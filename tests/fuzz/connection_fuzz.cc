// connection_fuzz: the full engine (proto::Connection) as a dispatcher
// drives it, through the shared driver in engine_driver.h (its comment lists
// the script format and the invariants).
//
// Input: [options: 1] then the driver's script. The options octet picks the
// output high-water mark (small ones make backpressure reachable with a few
// requests), the stream limit, the abuse budget and the accepted frame size;
// 0x00 is the server's defaults.
#include <cstddef>
#include <cstdint>

#include "proto/connection.h"
#include "tests/fuzz/engine_driver.h"

namespace {

using namespace h2lab;

constexpr size_t kHighWater[] = {512 * 1024, 16 * 1024, 1024, 64 * 1024};
constexpr uint32_t kStreams[] = {100, 1, 3, 100};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::FuzzInput in(data, size);
  const uint8_t pick = in.u8();
  proto::ConnectionOptions options;
  options.output_high_water = kHighWater[pick & 3];
  options.max_concurrent_streams = kStreams[(pick >> 2) & 3];
  if ((pick & 0x10) != 0) options.abuse_budget = 20;
  if ((pick & 0x20) != 0) options.max_frame_size = 65536;
  if ((pick & 0x40) != 0) options.stats_json = [] { return std::string("{\"fuzz\":1}"); };
  proto::Connection connection(options);

  fuzz::EngineBounds bounds;
  bounds.high_water = options.output_high_water;
  bounds.decode_headers = true;
  fuzz::EngineDriver(connection, bounds).run(in);
  return 0;
}
