// proto/connection's two fast paths — the replayed request block and the
// replayed response header block — must never change what is decoded or
// sent: each is checked against the HPACK state it depends on.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "proto/connection.h"
#include "proto/hpack.h"
#include "tests/support/frame_builder.h"

using namespace h2lab::proto;
using namespace h2lab::testing;

namespace {

// Feeds `in` and returns, per HEADERS/DATA frame sent, "id:status" or
// "id:body", decoding our HPACK with a decoder that lives as long as the
// conversation (as the client's would).
struct Client {
  Connection engine;
  hpack::Decoder decoder;
  std::vector<std::string> exchange(const ByteString& in) {
    REQUIRE(engine.on_input(in) == in.size());
    const ByteString out = drain(engine.output());
    std::vector<std::string> events;
    size_t pos = 0;
    FrameHeader h;
    while (decode_frame_header(Bytes(out).subspan(pos), h)) {
      const Bytes payload = Bytes(out).subspan(pos + kFrameHeaderSize, h.length);
      pos += kFrameHeaderSize + h.length;
      if (h.is(FrameType::kHeaders)) {
        std::string status;
        REQUIRE(decoder.decode(payload, [&](std::string_view n, std::string_view v) {
          if (n == ":status") status = v;
        }) == hpack::Status::Ok);
        events.push_back(std::to_string(h.stream_id) + ":" + status);
      } else if (h.is(FrameType::kData)) {
        events.push_back(std::to_string(h.stream_id) + ":" + std::string(payload.begin(), payload.end()));
      }
    }
    return events;
  }
};

// A GET whose :path is "the newest dynamic table entry" (index 62).
ByteString get_newest_entry(uint32_t id) {
  return frame(FrameType::kHeaders, flags::kEndStream | flags::kEndHeaders, id, {0x82, 0x86, 0xbe});
}

// A GET that inserts ":path: <path>" into the table (literal, incremental indexing).
ByteString get_inserting(uint32_t id, std::string_view path) {
  ByteString block = {0x82, 0x86, 0x44, static_cast<uint8_t>(path.size())};
  block = block + bytes(path);
  return frame(FrameType::kHeaders, flags::kEndStream | flags::kEndHeaders, id, block);
}

}  // namespace

TEST_CASE("a repeated request block follows the table when another block changed it") {
  Client c;
  c.exchange(preface() + settings());
  CHECK(c.exchange(get_inserting(1, "/bytes/3")) == std::vector<std::string>{"1:200", "1:abc"});
  // Index 62 is :path /bytes/3; the block changes nothing, so it is cached.
  CHECK(c.exchange(get_newest_entry(3)) == std::vector<std::string>{"3:200", "3:abc"});
  CHECK(c.exchange(get_newest_entry(5)) == std::vector<std::string>{"5:200", "5:abc"});
  // A different block inserts :path /nowhere: the same bytes as before now
  // mean /nowhere and must be answered 404.
  CHECK(c.exchange(get_inserting(7, "/nowhere")) == std::vector<std::string>{"7:404", "7:not found\n"});
  CHECK(c.exchange(get_newest_entry(9)) == std::vector<std::string>{"9:404", "9:not found\n"});
  CHECK(c.exchange(get_newest_entry(11)) == std::vector<std::string>{"11:404", "11:not found\n"});
}

TEST_CASE("a repeated malformed block is refused every time") {
  Client c;
  c.exchange(preface() + settings());
  // :path before :method is fine; a missing :scheme is not (§8.3.1).
  const ByteString bad = frame(FrameType::kHeaders, flags::kEndStream | flags::kEndHeaders, 1, {0x82, 0x84});
  c.engine.on_input(bad);
  ByteString again = bad;
  again[8] = 3;  // stream 3
  c.engine.on_input(again);
  CHECK(c.engine.counters().resets_sent == 2);
  CHECK(c.engine.counters().streams == 0);
}

TEST_CASE("replayed response blocks and templates decode the same as fresh ones") {
  Client c;
  c.exchange(preface() + settings());
  // Alternate routes so the response cache is hit, missed and refilled;
  // the client-side decoder must see the right :status every time.
  for (uint32_t id = 1; id < 60; id += 2) {
    const bool found = (id / 2) % 3 != 0;
    const auto events = c.exchange(get_request(id, found ? "/" : "/missing"));
    REQUIRE(events.size() == 2);
    CHECK(events[0] == std::to_string(id) + (found ? ":200" : ":404"));
    // The DATA frame too: from the patched template once it exists.
    CHECK(events[1] == std::to_string(id) + (found ? ":Hello World\n" : ":not found\n"));
  }
}

TEST_CASE("a peer's SETTINGS_HEADER_TABLE_SIZE change is honoured after replays") {
  Client c;
  c.exchange(preface() + settings());
  c.exchange(get_request(1));
  c.exchange(get_request(3));  // replayed block
  // The client shrinks our encoder's table to 0: the next block must begin
  // with a size update, and nothing may reference the old entries.
  c.exchange(settings({{0x1, 0}}));
  CHECK(c.exchange(get_request(5)) == std::vector<std::string>{"5:200", "5:Hello World\n"});
  CHECK(c.exchange(get_request(7)) == std::vector<std::string>{"7:200", "7:Hello World\n"});
  CHECK(c.decoder.table().entry_count() == 0);
}
