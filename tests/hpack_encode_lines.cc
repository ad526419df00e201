// Test helper for hpack_python_crosscheck_test: encodes header lists with
// h2lab::proto::hpack::Encoder::encode() (the response policy) so that an
// independent decoder can check them.
//
// stdin, one command per line:
//   size N                    set_peer_max_table_size(N)
//   f NAMEHEX VALUEHEX [never]  add a field to the current block ("-" = empty)
//   end                       encode the block; print its hex on one line
// Exit status 1 with a message on malformed input.
#include <cstdint>
#include <cstdio>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "proto/hpack.h"

namespace {

bool from_hex(const std::string& hex, std::string& out) {
  out.clear();
  if (hex == "-") return true;
  if (hex.size() % 2) return false;
  for (std::size_t i = 0; i < hex.size(); i += 2) {
    unsigned v = 0;
    if (std::sscanf(hex.c_str() + i, "%2x", &v) != 1) return false;
    out += static_cast<char>(v);
  }
  return true;
}

}  // namespace

int main() {
  h2lab::proto::hpack::Encoder encoder;
  std::vector<std::string> storage;  // names and values of the block
  std::vector<bool> never;
  std::string line;
  for (int lineno = 1; std::getline(std::cin, line); ++lineno) {
    std::istringstream in(line);
    std::string cmd;
    in >> cmd;
    if (cmd == "size") {
      std::size_t n = 0;
      if (!(in >> n)) {
        std::fprintf(stderr, "line %d: size N\n", lineno);
        return 1;
      }
      encoder.set_peer_max_table_size(n);
    } else if (cmd == "f") {
      std::string name_hex, value_hex, flag, name, value;
      in >> name_hex >> value_hex >> flag;
      if (!from_hex(name_hex, name) || !from_hex(value_hex, value)) {
        std::fprintf(stderr, "line %d: bad hex\n", lineno);
        return 1;
      }
      storage.push_back(name);
      storage.push_back(value);
      never.push_back(flag == "never");
    } else if (cmd == "end") {
      std::vector<h2lab::proto::hpack::Header> fields;
      for (std::size_t i = 0; i < never.size(); ++i) {
        fields.push_back({storage[2 * i], storage[2 * i + 1], never[i]});
      }
      std::vector<uint8_t> out(encoder.max_encoded_size(fields));
      const auto n = encoder.encode(fields, out);
      if (!n) {
        std::fprintf(stderr, "line %d: encode failed\n", lineno);
        return 1;
      }
      static constexpr char kHex[] = "0123456789abcdef";
      std::string hex;
      for (std::size_t i = 0; i < *n; ++i) {
        hex += kHex[out[i] >> 4];
        hex += kHex[out[i] & 0xf];
      }
      std::printf("%s\n", hex.empty() ? "-" : hex.c_str());
      storage.clear();
      never.clear();
    } else if (!cmd.empty()) {
      std::fprintf(stderr, "line %d: unknown command %s\n", lineno, cmd.c_str());
      return 1;
    }
  }
  return 0;
}
