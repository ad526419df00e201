// The pieces the concurrent dispatchers share, without sockets: the timer
// wheel, the connection limit (with eviction's hand-over), the engine that
// refuses a client, one connection's deadlines, when memory is trimmed, and
// what getrusage says of the process.
#include <catch2/catch.hpp>

#include <chrono>
#include <thread>
#include <vector>

#include "proto/refuse_engine.h"
#include "server/connection_deadlines.h"
#include "server/connection_limit.h"
#include "server/memory_trim.h"
#include "server/process_usage.h"
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

TEST_CASE("connection limit: an evicted slot goes to the newcomer, the evicted one holds a closing slot") {
  server::ConnectionLimit limit(1, 1);
  server::AdmissionSlot victim(limit, limit.admit());
  REQUIRE(victim.served());
  CHECK(limit.full());
  REQUIRE(victim.evict());  // the served slot is handed over...
  CHECK(victim.refused());  // ...and the victim closes in a refusal slot
  server::AdmissionSlot newcomer(limit, limit.admit_handed_over());
  CHECK(newcomer.served());
  CHECK(limit.counts().active == 1);
  server::AdmissionSlot second(limit, limit.admit());  // no closing slot left: dropped
  CHECK(second.served() == false);
  CHECK(limit.counts().dropped == 1);
  victim.reset();
  // Closed at once instead: nothing held, the slot goes on.
  REQUIRE(newcomer.hand_over());
  CHECK_FALSE(newcomer.evict());
  server::AdmissionSlot third(limit, limit.admit_handed_over());
  CHECK(limit.counts().active == 1);
  third.reset();
  CHECK(limit.counts().active == 0);
}

namespace {

using Deadlines = server::ConnectionDeadlines;
using Kind = Deadlines::Kind;

server::SessionProgress progress(uint64_t frames, bool preface, bool handshake = true,
                                 bool block = false, uint32_t streams = 0, uint64_t responses = 0) {
  return {handshake, {frames, preface, block, streams}, responses};
}

server::ServerOptions short_deadlines() {
  server::ServerOptions o;
  o.idle_timeout = 1000ms;
  o.preface_timeout = 300ms;
  o.header_timeout = 400ms;
  o.handshake_timeout = 500ms;
  o.min_progress_window = 2000ms;
  o.min_progress_rate = 100;  // 200 octets per window
  return o;
}

}  // namespace

TEST_CASE("deadlines: the preface first, then idle counts complete frames, not octets") {
  const auto t0 = Deadlines::Clock::now();
  Deadlines d(short_deadlines(), t0, false, progress(0, false));
  CHECK(d.next().kind == Kind::kPreface);
  CHECK(d.next().at == t0 + 300ms);
  CHECK(d.eviction_class(t0 + 10ms) == server::EvictionClass::kNone);  // too young
  CHECK(d.eviction_class(t0 + 50ms) == server::EvictionClass::kPreface);
  d.on_input(t0 + 100ms, progress(1, true), 33);
  CHECK(d.next().kind == Kind::kIdle);
  CHECK(d.next().at == t0 + 1100ms);
  CHECK(d.eviction_class(t0 + 100ms) == server::EvictionClass::kIdle);
  d.on_input(t0 + 500ms, progress(1, true), 5);  // octets of a frame still incomplete
  CHECK(d.next().at == t0 + 1100ms);
  d.on_input(t0 + 600ms, progress(2, true), 4);  // it completed
  CHECK(d.next().at == t0 + 1600ms);
}

TEST_CASE("deadlines: with TLS the preface deadline runs from the handshake's end") {
  const auto t0 = Deadlines::Clock::now();
  Deadlines d(short_deadlines(), t0, false, progress(0, false, /*handshake=*/false));
  CHECK(d.next().kind == Kind::kHandshake);
  CHECK(d.next().at == t0 + 500ms);
  CHECK(d.eviction_class(t0 + 50ms) == server::EvictionClass::kHandshake);
  d.on_input(t0 + 200ms, progress(0, false, true), 100);
  CHECK(d.next().kind == Kind::kPreface);
  CHECK(d.next().at == t0 + 500ms);  // 200 ms + 300 ms
}

TEST_CASE("deadlines: a header block must end in time; busy connections are not evicted") {
  const auto t0 = Deadlines::Clock::now();
  Deadlines d(short_deadlines(), t0, false, progress(1, true));
  d.on_input(t0 + 100ms, progress(2, true, true, /*block=*/true, 1), 20);
  CHECK(d.next().kind == Kind::kHeader);
  CHECK(d.next().at == t0 + 500ms);
  CHECK(d.eviction_class(t0 + 100ms) == server::EvictionClass::kNone);
  d.on_input(t0 + 300ms, progress(3, true, true, false, 1), 20);  // END_HEADERS
  CHECK(d.next().kind == Kind::kIdle);
  CHECK(d.eviction_class(t0 + 300ms) == server::EvictionClass::kNone);  // a stream is open
}

TEST_CASE("deadlines: minimum progress — a window that moved too little and answered nothing") {
  const auto t0 = Deadlines::Clock::now();
  Deadlines d(short_deadlines(), t0, false, progress(1, true));
  // Tiny frames every 500 ms keep idle fresh...
  for (int i = 1; i <= 4; ++i) {
    d.on_input(t0 + i * 500ms, progress(1 + i, true), 17);
    d.on_write(t0 + i * 500ms, 17, false, progress(1 + i, true));
  }
  // ...but 136 octets in the 2 s window is below 200: due at its end.
  CHECK(d.next().kind == Kind::kProgress);
  CHECK(d.next().at == t0 + 2000ms);
  d.settle(t0 + 2000ms);
  CHECK(d.next().kind == Kind::kProgress);  // not met: stays due

  auto long_idle = short_deadlines();
  long_idle.idle_timeout = 10s;
  Deadlines ok(long_idle, t0, false, progress(1, true));
  ok.on_input(t0 + 500ms, progress(2, true, true, false, 1), 40);
  ok.on_write(t0 + 600ms, 40, false, progress(2, true, true, false, 0, /*responses=*/1));
  CHECK(ok.next().kind == Kind::kIdle);  // a response completed: met
  ok.settle(t0 + 2100ms);                // the window rolls over
  ok.on_input(t0 + 2200ms, progress(3, true, true, false, 0, 1), 17);
  CHECK(ok.next().kind == Kind::kProgress);
  CHECK(ok.next().at == t0 + 4100ms);
}

TEST_CASE("deadlines: the linger is short after an error and bounded in octets") {
  const auto t0 = Deadlines::Clock::now();
  Deadlines d(short_deadlines(), t0, false, progress(1, true));
  d.begin_linger(t0, /*after_error=*/true);
  CHECK(d.next().kind == Kind::kLinger);
  CHECK(d.next().at == t0 + Deadlines::kErrorLingerTimeout);
  CHECK(d.linger_discard(Deadlines::kLingerMaxOctets));
  CHECK_FALSE(d.linger_discard(1));
}

TEST_CASE("memory trim: bursts that come back are not trimmed; a crowd that stays gone is, once") {
  server::MemoryTrim trim;
  auto t = server::MemoryTrim::Clock::now();
  // Bursts of 2,000 connections, each ending 10 ms before the next begins,
  // for five seconds: the memory they leave is reused, never trimmed.
  for (int burst = 0; burst < 50; ++burst) {
    CHECK_FALSE(trim.maybe_trim(2000, t));
    CHECK_FALSE(trim.due());
    t += 90ms;
    for (int i = 0; i < 2000; ++i) trim.on_close();
    CHECK_FALSE(trim.maybe_trim(0, t));
    CHECK(trim.due() == t + server::MemoryTrim::kSettle);
    t += 10ms;
  }
  // The last burst stays gone: nothing until a second has passed, then one
  // trim, then none while nothing else closes.
  CHECK_FALSE(trim.maybe_trim(0, t));
  CHECK(*trim.until_due(t) == server::MemoryTrim::kSettle - 10ms);
  CHECK_FALSE(trim.maybe_trim(0, t + server::MemoryTrim::kSettle - 11ms));
  CHECK(trim.until_due(t + server::MemoryTrim::kSettle) == 0ms);  // overdue is zero, not negative
  CHECK(trim.maybe_trim(0, t + server::MemoryTrim::kSettle));
  CHECK_FALSE(trim.due());
  CHECK_FALSE(trim.maybe_trim(0, t + 10s));
  CHECK_FALSE(trim.due());
}

TEST_CASE("memory trim: half the peak or fewer for a second; the peak resets at each trim") {
  server::MemoryTrim trim;
  auto t = server::MemoryTrim::Clock::now();
  CHECK_FALSE(trim.maybe_trim(10000, t));
  for (int i = 0; i < 4000; ++i) trim.on_close();
  CHECK_FALSE(trim.maybe_trim(6000, t));  // above half: not a crowd gone
  CHECK_FALSE(trim.maybe_trim(6000, t + 5s));
  CHECK_FALSE(trim.due());
  for (int i = 0; i < 1000; ++i) trim.on_close();
  CHECK_FALSE(trim.maybe_trim(5000, t + 5s));  // half: the second starts
  CHECK_FALSE(trim.maybe_trim(5001, t + 5500ms));  // back above: it starts again
  CHECK_FALSE(trim.maybe_trim(4000, t + 5600ms));
  CHECK_FALSE(trim.maybe_trim(4000, t + 6599ms));
  CHECK(trim.maybe_trim(4000, t + 6600ms));
  // The peak is now 4,000: a fall to 2,000 is the next crowd gone, and a
  // fall with no close in between (the counts only) trims nothing.
  CHECK_FALSE(trim.maybe_trim(2000, t + 7s));
  CHECK_FALSE(trim.maybe_trim(2000, t + 9s));
  trim.on_close();
  CHECK_FALSE(trim.maybe_trim(2000, t + 9s));
  CHECK(trim.maybe_trim(2000, t + 10s));
}

TEST_CASE("process usage: CPU burnt counts as user time, sleeps as voluntary switches") {
  using namespace std::chrono_literals;
  const server::ProcessUsage before = server::process_usage();
  // 50 ms of computing on this thread…
  const auto until = std::chrono::steady_clock::now() + 50ms;
  volatile uint64_t sink = 0;
  while (std::chrono::steady_clock::now() < until) {
    for (int i = 0; i < 1000; ++i) sink = sink + static_cast<uint64_t>(i);
  }
  const server::ProcessUsage burnt = server::process_usage().since(before);
  // … then 20 sleeps: each gives the CPU up.
  for (int i = 0; i < 20; ++i) std::this_thread::sleep_for(1ms);
  const server::ProcessUsage slept = server::process_usage().since(before);
  INFO("user " << burnt.user_us << " µs, system " << burnt.system_us << " µs; "
               << slept.voluntary_switches << " voluntary switches after the sleeps");
  // The kernel splits a thread's run time between user and system by its
  // tick samples: most of 50 ms of arithmetic is user time.
  CHECK(burnt.user_us + burnt.system_us >= 40000);
  CHECK(burnt.user_us >= 25000);
  CHECK(slept.voluntary_switches >= burnt.voluntary_switches + 20);
  CHECK(slept.user_us >= burnt.user_us);
}
