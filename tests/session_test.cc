// server/Session: frames split across reads reach the engine whole, only the
// incomplete tail is carried, and backpressure stops reading.
#include <catch2/catch.hpp>

#include "proto/mini_engine.h"
#include "server/session.h"
#include "tests/support/frame_builder.h"
#include "tests/support/session_io.h"

using namespace h2lab;
using namespace h2lab::testing;
using h2lab::proto::Bytes;

TEST_CASE("session: any two-way split of the input gives the same output") {
  const ByteString in = preface() + settings() + get_request(1) + get_request(3, "/a/longer/path") +
                        frame(proto::FrameType::kData, proto::flags::kEndStream, 5, ByteString(3000, 'x'));
  ByteString expected;
  {
    server::Session whole(std::make_unique<proto::MiniEngine>(), 1 << 20);
    whole.on_data(in);
    expected = take_output(whole);
  }
  for (size_t split = 0; split <= in.size(); split += 7) {
    INFO("split at " << split);
    server::Session s(std::make_unique<proto::MiniEngine>(), 1 << 20);
    s.on_data(Bytes(in).first(split));
    s.on_data(Bytes(in).subspan(split));
    CHECK(take_output(s) == expected);
    CHECK_FALSE(s.wants_close());
  }
}

TEST_CASE("session: one byte at a time") {
  const ByteString in = preface() + settings() + get_request(1);
  server::Session s(std::make_unique<proto::MiniEngine>(), 1 << 20);
  for (uint8_t b : in) s.on_data(Bytes(&b, 1));
  const ByteString out = take_output(s);
  CHECK(out.size() == 9 + 9 + proto::MiniEngine::kResponseSize);
}

TEST_CASE("session: backpressure stops reading above the bound and resumes below it") {
  server::Session s(std::make_unique<proto::MiniEngine>(), 1000);
  ByteString in = preface() + settings();
  for (uint32_t id = 1; id < 200; id += 2) in = in + get_request(id);
  s.on_data(in);
  CHECK(s.pending_bytes() > 1000);
  CHECK_FALSE(s.wants_read());
  CHECK(s.wants_write());
  s.on_written(s.pending_bytes() - 10);
  CHECK(s.wants_read());
}

TEST_CASE("session: the engine's end closes once output is flushed") {
  server::Session s(std::make_unique<proto::MiniEngine>(), 1 << 20);
  s.on_data(preface() + get_request(1));
  s.shutdown();
  CHECK_FALSE(s.wants_close());  // the response and GOAWAY are still queued
  take_output(s);
  CHECK(s.wants_close());
  CHECK(std::string(s.close_reason()).empty());
}
