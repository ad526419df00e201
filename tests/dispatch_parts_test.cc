// The pieces the concurrent dispatchers share, without sockets: the timer
// wheel, the connection limit and the engine that refuses a client.
#include <catch2/catch.hpp>

#include <vector>

#include "proto/refuse_engine.h"
#include "server/connection_limit.h"
#include "server/timer_wheel.h"
#include "tests/support/frame_builder.h"

using namespace h2lab;
using namespace h2lab::testing;
using namespace std::chrono_literals;
using server::TimerWheel;

TEST_CASE("timer wheel: fires at or after the deadline, never before") {
  const auto t0 = TimerWheel::Clock::now();
  TimerWheel wheel(10ms, 8, t0);  // one revolution: 80 ms
  TimerWheel::Node a, b, c;
  a.key = 1;
  b.key = 2;
  c.key = 3;
  wheel.arm(a, t0 + 25ms);
  wheel.arm(b, t0 + 200ms);  // beyond one revolution
  wheel.arm(c, t0 + 25ms);
  wheel.disarm(c);
  CHECK(wheel.armed() == 2);
  std::vector<uint64_t> fired;
  auto record = [&](TimerWheel::Node& n) { fired.push_back(n.key); };
  wheel.expire(t0 + 29ms, record);
  CHECK(fired.empty());
  wheel.expire(t0 + 30ms, record);
  CHECK(fired == std::vector<uint64_t>{1});
  wheel.expire(t0 + 195ms, record);  // b's slot is visited twice before its revolution
  CHECK(fired == std::vector<uint64_t>{1});
  wheel.expire(t0 + 10s, record);  // a long pause: every slot once
  CHECK(fired == std::vector<uint64_t>{1, 2});
  CHECK(wheel.armed() == 0);
  CHECK_FALSE(wheel.until_next(t0 + 10s));
}

TEST_CASE("timer wheel: re-arming from the callback, and until_next") {
  const auto t0 = TimerWheel::Clock::now();
  TimerWheel wheel(10ms, 16, t0);
  TimerWheel::Node n;
  wheel.arm(n, t0 + 50ms);
  CHECK(*wheel.until_next(t0) == 50ms);
  int fired = 0;
  wheel.expire(t0 + 50ms, [&](TimerWheel::Node& node) {
    ++fired;
    wheel.arm(node, t0 + 50ms);  // a deadline already passed: next tick
  });
  CHECK(fired == 1);
  CHECK(n.armed());
  wheel.expire(t0 + 60ms, [&](TimerWheel::Node&) { ++fired; });
  CHECK(fired == 2);
}

TEST_CASE("connection limit: serve, refuse, drop, and give back") {
  server::ConnectionLimit limit(2);
  CHECK(limit.admit() == server::Admission::kServe);
  {
    server::AdmissionSlot second(limit, limit.admit());
    CHECK_FALSE(second.refused());
    const server::Admission third = limit.admit();
    CHECK(third == server::Admission::kRefuse);
    limit.release(third);
    CHECK(limit.counts().active == 2);
  }
  CHECK(limit.counts().active == 1);
  CHECK(limit.admit() == server::Admission::kServe);
  std::vector<server::Admission> refusals;
  for (size_t i = 0; i < server::ConnectionLimit::kMaxRefusing; ++i) refusals.push_back(limit.admit());
  CHECK(refusals.back() == server::Admission::kRefuse);
  CHECK(limit.admit() == server::Admission::kDrop);
  const server::ConnectionCounts c = limit.counts();
  CHECK(c.accepted == 3);
  CHECK(c.refused == 2 + server::ConnectionLimit::kMaxRefusing);
  CHECK(c.dropped == 1);
}

TEST_CASE("refuse engine: after the preface, SETTINGS and GOAWAY \"server full\"") {
  proto::RefuseEngine e;
  const ByteString in = preface() + settings() + get_request(1);
  // The preface split across reads.
  CHECK(e.on_input(proto::Bytes(in).first(10)) == 10);
  CHECK(e.output().empty());
  CHECK_FALSE(e.done());
  CHECK(e.on_input(proto::Bytes(in).subspan(10)) == in.size() - 10);
  CHECK(e.done());
  CHECK(*e.close_reason() == '\0');
  CHECK(drain(e.output()) ==
        frame(proto::FrameType::kSettings, 0, 0, {0x00, 0x03, 0, 0, 0, 0}) +
            frame(proto::FrameType::kGoaway, 0, 0, u32(0) + u32(0) + bytes("server full")));
}

TEST_CASE("refuse engine: a wrong preface is refused as by every engine (proto/preface.h)") {
  proto::RefuseEngine e;
  e.on_input(bytes("BAD PREFACE ATTEMPT\r\n"));
  CHECK(e.done());
  CHECK(drain(e.output()) ==
        frame(proto::FrameType::kSettings, 0, 0, {}) +
            frame(proto::FrameType::kGoaway, 0, 0,
                  u32(0) + u32(1) + bytes("invalid connection preface")));
  CHECK(std::string(e.close_reason()) == "invalid connection preface");
  proto::RefuseEngine h1;
  h1.on_input(bytes("GET / HTTP/1.1\r\n"));
  CHECK(h1.done());
  CHECK(std::string(h1.close_reason()) == "HTTP/1.1 request on an HTTP/2-only port");
}
