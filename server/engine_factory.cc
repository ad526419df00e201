#include "server/engine_factory.h"

#include "proto/connection.h"
#include "proto/mini_engine.h"
#include "proto/nghttp2_engine.h"

namespace h2lab::server {

std::unique_ptr<proto::Engine> make_engine(const ServerOptions& options) {
  switch (options.engine) {
    case EngineKind::kFull: {
      proto::ConnectionOptions http2 = options.http2;
      http2.output_high_water = options.max_output_bytes;
      return std::make_unique<proto::Connection>(std::move(http2));
    }
    case EngineKind::kMini:
      return std::make_unique<proto::MiniEngine>();
    case EngineKind::kNghttp2: {
      proto::ConnectionOptions http2 = options.http2;
      http2.output_high_water = options.max_output_bytes;
      return std::make_unique<proto::Nghttp2Engine>(std::move(http2));
    }
  }
  return nullptr;
}

}  // namespace h2lab::server
