// proto/output_queue: order, merging, references, partial consumption, and
// bounded arena memory while a queue streams without ever emptying.
#include <catch2/catch.hpp>

#include <cstring>
#include <string>

#include "proto/output_queue.h"
#include "tests/support/frame_builder.h"

using h2lab::proto::OutputQueue;

namespace {
std::string contents(const OutputQueue& q) {
  std::string out;
  for (const iovec& v : q.iovecs()) out.append(static_cast<const char*>(v.iov_base), v.iov_len);
  return out;
}
}  // namespace

TEST_CASE("adjacent arena writes merge; references stay separate and uncopied") {
  OutputQueue q;
  std::memcpy(q.append(3), "abc", 3);
  std::memcpy(q.append(2), "de", 2);
  static const char body[] = "BODY";
  q.append_ref(body, 4);
  std::memcpy(q.append(1), "f", 1);
  CHECK(q.size() == 10);
  REQUIRE(q.iovecs().size() == 3);
  CHECK(q.iovecs()[1].iov_base == body);
  CHECK(contents(q) == "abcdeBODYf");
}

TEST_CASE("partial consumption resumes inside an iovec") {
  OutputQueue q;
  q.append_copy("hello ", 6);
  static const char world[] = "world";
  q.append_ref(world, 5);
  for (size_t step : {1, 4, 3, 2, 1}) {
    const std::string before = contents(q);
    q.consume(step);
    CHECK(contents(q) == before.substr(step));
  }
  CHECK(q.empty());
  CHECK(q.iovecs().empty());
}

TEST_CASE("a queue that streams without emptying keeps its arena bounded") {
  OutputQueue q;
  static const uint8_t body[16384] = {};
  for (int i = 0; i < 10000; ++i) {
    std::memset(q.append(9), 0, 9);  // a frame header
    q.append_ref(body, sizeof body);
    // The writer keeps about two frames pending, never zero.
    while (q.size() > 2 * (9 + sizeof body)) q.consume(7000);
  }
  CHECK(q.arena_bytes() <= 3 * OutputQueue::kChunkSize);
  q.consume(q.size());
  q.release();
  CHECK(q.arena_bytes() == 0);
}

TEST_CASE("append_copy splits data larger than a chunk") {
  OutputQueue q;
  std::string big(OutputQueue::kChunkSize * 2 + 5, 'x');
  big[0] = 'a';
  big.back() = 'z';
  q.append_copy(big.data(), big.size());
  CHECK(contents(q) == big);
}

TEST_CASE("response ends: the per-response write policy's boundaries") {
  OutputQueue q;
  q.end_response();  // not tracking yet: nothing remembered
  q.track_responses();
  std::memset(q.append(9), 1, 9);  // SETTINGS before any response
  std::memset(q.append(31), 2, 31);
  q.end_response();
  static const uint8_t body[100] = {};
  q.append_ref(body, sizeof body);
  q.end_response();
  std::memset(q.append(17), 3, 17);  // a GOAWAY, no response after it
  CHECK(q.size() == 157);
  CHECK(q.octets_through_next_response() == 40);
  q.consume(30);
  CHECK(q.octets_through_next_response() == 10);
  CHECK(q.responses_consumed() == 0);
  q.consume(10);
  CHECK(q.responses_consumed() == 1);
  CHECK(q.octets_through_next_response() == 100);
  q.consume(100);
  CHECK(q.responses_consumed() == 2);
  CHECK(q.octets_through_next_response() == 17);  // no end pending: everything
  q.consume(17);
  CHECK(q.empty());
}

TEST_CASE("a chunk pool: released and destroyed queues give chunks back, new ones take them") {
  h2lab::proto::ChunkPool pool(2);
  const uint8_t* first_chunk = nullptr;
  {
    OutputQueue a;
    a.use_pool(&pool);
    uint8_t* p = a.append(5);
    std::memcpy(p, "hello", 5);
    first_chunk = p;
    CHECK(contents(a) == "hello");
    a.consume(5);
    a.release();
    CHECK(a.arena_bytes() == 0);
    CHECK(pool.held() == 1);  // the chunk went to the pool, not to free()

    OutputQueue b;
    b.use_pool(&pool);
    std::memcpy(b.append(3), "abc", 3);
    CHECK(b.iovecs()[0].iov_base == first_chunk);  // taken from the pool
    CHECK(pool.held() == 0);
    CHECK(contents(b) == "abc");
    // a queue is written again after release(): a fresh chunk, same octets
    std::memcpy(a.append(2), "xy", 2);
    CHECK(contents(a) == "xy");
    CHECK(contents(b) == "abc");
  }  // a and b are destroyed: both chunks go back
  CHECK(pool.held() == 2);
  {
    // A pool holds at most its bound; the rest is freed.
    OutputQueue c;
    c.use_pool(&pool);
    for (int i = 0; i < 3; ++i) {
      std::memset(c.append(OutputQueue::kChunkSize), 'c', OutputQueue::kChunkSize);
    }
    CHECK(pool.held() == 0);  // two taken from the pool, one allocated
    c.consume(c.size());
    c.release();
    CHECK(pool.held() == 2);
  }
  CHECK(pool.held() == 2);
}
