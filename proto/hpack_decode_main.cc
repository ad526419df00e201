// hpack_decode: decodes an nghttp2 inflatehd-style JSON story with
// h2lab::proto::hpack::Decoder. Reads stdin, writes stdout; see usage().
//
//   bazel run //proto:hpack_decode < story.json
//
// One Decoder serves the whole story, so the dynamic table carries over from
// case to case, as in the hpack-test-case corpus.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <iterator>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "proto/hpack.h"

namespace {

using h2lab::proto::hpack::Decoder;
using h2lab::proto::hpack::Limits;
using h2lab::proto::hpack::Status;

// The decoder preallocates 3 x the table size limit (and the field-size
// limit): keep what a story can ask for reasonable.
constexpr uint64_t kMaxSize = uint64_t{1} << 24;

constexpr const char* kUsage = R"(usage: hpack_decode [options] < story.json > decoded.json

Decodes an HPACK "story" (the JSON format of nghttp2's inflatehd and the
hpack-test-case corpus) with h2lab's HPACK decoder:

  {"cases": [{"seqno": 0, "wire": "8286...", "header_table_size": 4096}, ...]}

  wire               hex string, one complete header block (required)
  header_table_size  optional; applied before the case as our
                     SETTINGS_HEADER_TABLE_SIZE: size updates above it are
                     errors, and if it is below the current table size the
                     block must begin with a size update (as inflatehd)
  seqno              optional, defaults to the case's position
  other keys         ignored (e.g. "headers", "description")
  A key whose value is null counts as absent.

One decoder decodes all cases in order (the dynamic table carries over).
Output: the same format, pretty-printed, with "header_table_size" the
dynamic table's maximum size after the case and "headers" the decoded list.
Octets that are not UTF-8 are written as \u00XX.

On malformed JSON, bad hex or a block that fails to decode, prints one line
to stderr, e.g. "case 3 (seqno 3): COMPRESSION_ERROR: <detail>", writes
nothing to stdout and exits with status 1.

options:
  --max-header-list-size=N   decoder limit (default 65536)
  --max-fields=N             decoder limit (default 100)
  --max-field-size=N         decoder limit (default 8192)
  --table-size=N             initial SETTINGS_HEADER_TABLE_SIZE (default 4096)
                             (sizes and limits: at most 16777216)
  --help                     this text
)";

// ---------------------------------------------------------------------------
// A small JSON reader (RFC 8259): enough for stories, strict about syntax.

struct JsonMember;

struct Json {
  enum class Kind : uint8_t { Null, Bool, Number, String, Array, Object };
  Kind kind = Kind::Null;
  bool boolean = false;
  std::string text;  // String: decoded UTF-8; Number: the literal
  std::vector<Json> items;
  std::vector<JsonMember> members;  // in input order

  // The member named `key` (the last one if repeated, as most readers do).
  const Json* get(std::string_view key) const;
};

struct JsonMember {
  std::string key;
  Json value;
};

// The value of `key` (the last, if repeated); a null value counts as absent,
// as inflatehd's readers take it ("header_table_size": null).
const Json* Json::get(std::string_view key) const {
  const Json* found = nullptr;
  for (const JsonMember& m : members) {
    if (m.key == key) found = &m.value;
  }
  return found != nullptr && found->kind == Kind::Null ? nullptr : found;
}

class JsonReader {
 public:
  explicit JsonReader(std::string_view in) : in_(in) {}

  // Parses the whole input as one value. On failure returns false and
  // error() says what and where.
  bool parse(Json& out) {
    skip_ws();
    if (!value(out, 0)) return false;
    skip_ws();
    if (pos_ != in_.size()) return fail("unexpected data after the value");
    return true;
  }
  const std::string& error() const { return error_; }

 private:
  static constexpr int kMaxDepth = 64;

  bool fail(std::string_view what) {
    std::size_t line = 1, col = 1;
    for (std::size_t i = 0; i < pos_ && i < in_.size(); ++i) {
      if (in_[i] == '\n') {
        ++line;
        col = 1;
      } else {
        ++col;
      }
    }
    error_ = "malformed JSON at line " + std::to_string(line) + ", column " +
             std::to_string(col) + ": " + std::string(what);
    return false;
  }
  bool at_end() const { return pos_ >= in_.size(); }
  char peek() const { return in_[pos_]; }
  void skip_ws() {
    while (!at_end() && (peek() == ' ' || peek() == '\t' || peek() == '\n' ||
                         peek() == '\r')) {
      ++pos_;
    }
  }
  bool literal(std::string_view word) {
    if (in_.substr(pos_, word.size()) != word) return fail("invalid literal");
    pos_ += word.size();
    return true;
  }

  bool value(Json& out, int depth) {
    if (depth > kMaxDepth) return fail("nesting too deep");
    if (at_end()) return fail("unexpected end of input");
    switch (peek()) {
      case '{':
        return object(out, depth);
      case '[':
        return array(out, depth);
      case '"':
        out.kind = Json::Kind::String;
        return string(out.text);
      case 't':
        out.kind = Json::Kind::Bool;
        out.boolean = true;
        return literal("true");
      case 'f':
        out.kind = Json::Kind::Bool;
        return literal("false");
      case 'n':
        out.kind = Json::Kind::Null;
        return literal("null");
      default:
        return number(out);
    }
  }

  // The comma-separated elements of an object or array, after its opening
  // bracket: calls element() for each, up to `close`.
  template <class Element>
  bool sequence(char close, const char* what, Element&& element) {
    ++pos_;  // '{' or '['
    skip_ws();
    if (!at_end() && peek() == close) {
      ++pos_;
      return true;
    }
    for (;;) {
      skip_ws();
      if (!element()) return false;
      skip_ws();
      if (at_end()) return fail(std::string("unterminated ") + what);
      if (peek() == close) {
        ++pos_;
        return true;
      }
      if (peek() != ',') return fail(std::string("expected ',' or '") + close + "'");
      ++pos_;
    }
  }

  bool object(Json& out, int depth) {
    out.kind = Json::Kind::Object;
    return sequence('}', "object", [&] {
      if (at_end() || peek() != '"') return fail("expected a string key");
      JsonMember m;
      if (!string(m.key)) return false;
      skip_ws();
      if (at_end() || peek() != ':') return fail("expected ':'");
      ++pos_;
      skip_ws();
      if (!value(m.value, depth + 1)) return false;
      out.members.push_back(std::move(m));
      return true;
    });
  }

  bool array(Json& out, int depth) {
    out.kind = Json::Kind::Array;
    return sequence(']', "array", [&] {
      out.items.emplace_back();
      return value(out.items.back(), depth + 1);
    });
  }

  bool number(Json& out) {
    const std::size_t start = pos_;
    const auto digits = [this] {
      const std::size_t from = pos_;
      while (!at_end() && peek() >= '0' && peek() <= '9') ++pos_;
      return pos_ > from;
    };
    if (!at_end() && peek() == '-') ++pos_;
    if (!at_end() && peek() == '0') {
      ++pos_;
    } else if (!digits()) {
      pos_ = start;
      return fail("expected a value");
    }
    if (!at_end() && peek() == '.') {
      ++pos_;
      if (!digits()) return fail("invalid number");
    }
    if (!at_end() && (peek() == 'e' || peek() == 'E')) {
      ++pos_;
      if (!at_end() && (peek() == '+' || peek() == '-')) ++pos_;
      if (!digits()) return fail("invalid number");
    }
    out.kind = Json::Kind::Number;
    out.text.assign(in_.substr(start, pos_ - start));
    return true;
  }

  bool hex4(uint32_t& v) {
    if (in_.size() - pos_ < 4) return fail("truncated \\u escape");
    v = 0;
    for (int i = 0; i < 4; ++i) {
      const char c = in_[pos_++];
      v <<= 4;
      if (c >= '0' && c <= '9') {
        v |= c - '0';
      } else if (c >= 'a' && c <= 'f') {
        v |= c - 'a' + 10;
      } else if (c >= 'A' && c <= 'F') {
        v |= c - 'A' + 10;
      } else {
        return fail("invalid \\u escape");
      }
    }
    return true;
  }

  static void append_utf8(std::string& s, uint32_t cp) {
    if (cp < 0x80) {
      s += static_cast<char>(cp);
    } else if (cp < 0x800) {
      s += static_cast<char>(0xc0 | (cp >> 6));
      s += static_cast<char>(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
      s += static_cast<char>(0xe0 | (cp >> 12));
      s += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
      s += static_cast<char>(0x80 | (cp & 0x3f));
    } else {
      s += static_cast<char>(0xf0 | (cp >> 18));
      s += static_cast<char>(0x80 | ((cp >> 12) & 0x3f));
      s += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
      s += static_cast<char>(0x80 | (cp & 0x3f));
    }
  }

  bool string(std::string& out) {
    ++pos_;  // '"'
    out.clear();
    for (;;) {
      if (at_end()) return fail("unterminated string");
      const char c = in_[pos_++];
      if (c == '"') return true;
      if (static_cast<unsigned char>(c) < 0x20) {
        --pos_;
        return fail("control character in string");
      }
      if (c != '\\') {
        out += c;
        continue;
      }
      if (at_end()) return fail("unterminated string");
      switch (in_[pos_++]) {
        case '"':
          out += '"';
          break;
        case '\\':
          out += '\\';
          break;
        case '/':
          out += '/';
          break;
        case 'b':
          out += '\b';
          break;
        case 'f':
          out += '\f';
          break;
        case 'n':
          out += '\n';
          break;
        case 'r':
          out += '\r';
          break;
        case 't':
          out += '\t';
          break;
        case 'u': {
          uint32_t cp = 0;
          if (!hex4(cp)) return false;
          if (cp >= 0xdc00 && cp <= 0xdfff) return fail("unpaired surrogate");
          if (cp >= 0xd800 && cp <= 0xdbff) {
            uint32_t low = 0;
            if (in_.substr(pos_, 2) != "\\u") return fail("unpaired surrogate");
            pos_ += 2;
            if (!hex4(low)) return false;
            if (low < 0xdc00 || low > 0xdfff) return fail("unpaired surrogate");
            cp = 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00);
          }
          append_utf8(out, cp);
          break;
        }
        default:
          --pos_;
          return fail("invalid escape");
      }
    }
  }

  std::string_view in_;
  std::size_t pos_ = 0;
  std::string error_;
};

// A non-negative integer that fits `max`; nullopt otherwise.
std::optional<uint64_t> as_uint(const Json& j, uint64_t max) {
  if (j.kind != Json::Kind::Number || j.text.empty() ||
      j.text.find_first_not_of("0123456789") != std::string::npos ||
      j.text.size() > 19) {
    return std::nullopt;
  }
  const uint64_t v = std::strtoull(j.text.c_str(), nullptr, 10);
  if (v > max) return std::nullopt;
  return v;
}

std::optional<uint64_t> parse_uint(std::string_view s, uint64_t max) {
  Json j;
  j.kind = Json::Kind::Number;
  j.text.assign(s);
  return as_uint(j, max);
}

// Hex to octets; on error returns false and sets `why`.
bool from_hex(std::string_view hex, std::vector<uint8_t>& out,
              std::string& why) {
  const auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  if (hex.size() % 2) {
    why = "odd number of hex digits";
    return false;
  }
  out.clear();
  out.reserve(hex.size() / 2);
  for (std::size_t i = 0; i < hex.size(); i += 2) {
    const int hi = nibble(hex[i]);
    const int lo = nibble(hex[i + 1]);
    if (hi < 0 || lo < 0) {
      why = "not a hex digit at offset " + std::to_string(hi < 0 ? i : i + 1);
      return false;
    }
    out.push_back(static_cast<uint8_t>(hi << 4 | lo));
  }
  return true;
}

// Length of the well-formed UTF-8 sequence at s[i] (Unicode Table 3-7), or
// 0 if there is none.
std::size_t utf8_length(std::string_view s, std::size_t i) {
  const auto at = [&](std::size_t k) -> unsigned {
    return i + k < s.size() ? static_cast<unsigned char>(s[i + k]) : 0x100;
  };
  const auto cont = [&](std::size_t k, unsigned lo = 0x80, unsigned hi = 0xbf) {
    return at(k) >= lo && at(k) <= hi;
  };
  const unsigned c = at(0);
  if (c < 0x80) return 1;
  if (c >= 0xc2 && c <= 0xdf) return cont(1) ? 2 : 0;
  if (c == 0xe0) return cont(1, 0xa0) && cont(2) ? 3 : 0;
  if ((c >= 0xe1 && c <= 0xec) || c == 0xee || c == 0xef) {
    return cont(1) && cont(2) ? 3 : 0;
  }
  if (c == 0xed) return cont(1, 0x80, 0x9f) && cont(2) ? 3 : 0;
  if (c == 0xf0) return cont(1, 0x90) && cont(2) && cont(3) ? 4 : 0;
  if (c >= 0xf1 && c <= 0xf3) return cont(1) && cont(2) && cont(3) ? 4 : 0;
  if (c == 0xf4) return cont(1, 0x80, 0x8f) && cont(2) && cont(3) ? 4 : 0;
  return 0;
}

// Appends `s` as a JSON string literal: quotes, backslash and control
// characters escaped; octets that do not form UTF-8 written as \u00XX.
void append_json_string(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  const auto escape_octet = [&](unsigned char c) {
    out += "\\u00";
    out += kHex[c >> 4];
    out += kHex[c & 0xf];
  };
  out += '"';
  for (std::size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    switch (c) {
      case '"':
        out += "\\\"";
        ++i;
        continue;
      case '\\':
        out += "\\\\";
        ++i;
        continue;
      case '\b':
        out += "\\b";
        ++i;
        continue;
      case '\f':
        out += "\\f";
        ++i;
        continue;
      case '\n':
        out += "\\n";
        ++i;
        continue;
      case '\r':
        out += "\\r";
        ++i;
        continue;
      case '\t':
        out += "\\t";
        ++i;
        continue;
      default:
        break;
    }
    if (c < 0x20 || c == 0x7f) {
      escape_octet(c);
      ++i;
      continue;
    }
    const std::size_t n = utf8_length(s, i);
    if (n == 0) {
      escape_octet(c);
      ++i;
      continue;
    }
    out.append(s.substr(i, n));
    i += n;
  }
  out += '"';
}

std::string to_hex(const std::vector<uint8_t>& bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string s;
  s.reserve(bytes.size() * 2);
  for (const uint8_t b : bytes) {
    s += kHex[b >> 4];
    s += kHex[b & 0xf];
  }
  return s;
}

struct Options {
  Limits limits;
  bool help = false;
  std::string error;
};

Options parse_args(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      o.help = true;
      continue;
    }
    const std::size_t eq = arg.find('=');
    const std::string_view key = arg.substr(0, eq);
    std::size_t* target = key == "--max-header-list-size" ? &o.limits.max_header_list_size
                          : key == "--max-fields"         ? &o.limits.max_fields
                          : key == "--max-field-size"     ? &o.limits.max_field_size
                          : key == "--table-size"         ? &o.limits.max_table_size
                                                          : nullptr;
    if (!target || eq == std::string_view::npos) {
      o.error = "unknown option " + std::string(arg);
      return o;
    }
    const auto v = parse_uint(arg.substr(eq + 1), kMaxSize);
    if (!v) {
      o.error = "bad value in " + std::string(arg);
      return o;
    }
    *target = static_cast<std::size_t>(*v);
  }
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  const Options opt = parse_args(argc, argv);
  if (opt.help) {
    std::fputs(kUsage, stdout);
    return 0;
  }
  if (!opt.error.empty()) {
    std::fprintf(stderr, "hpack_decode: %s (try --help)\n", opt.error.c_str());
    return 2;
  }

  const std::string input((std::istreambuf_iterator<char>(std::cin)),
                          std::istreambuf_iterator<char>());
  Json root;
  JsonReader reader(input);
  if (!reader.parse(root)) {
    std::fprintf(stderr, "%s\n", reader.error().c_str());
    return 1;
  }
  const Json* cases = root.kind == Json::Kind::Object ? root.get("cases") : nullptr;
  if (!cases || cases->kind != Json::Kind::Array) {
    std::fprintf(stderr, "story: the top level must be an object with a \"cases\" array\n");
    return 1;
  }

  Decoder decoder(opt.limits);
  std::string out = "{\n  \"cases\": [";
  std::vector<uint8_t> wire;
  std::vector<std::pair<std::string, std::string>> headers;
  for (std::size_t i = 0; i < cases->items.size(); ++i) {
    const Json& c = cases->items[i];
    std::string where = "case " + std::to_string(i);
    const auto error = [&](const std::string& what) {
      std::fprintf(stderr, "%s: %s\n", where.c_str(), what.c_str());
      return 1;
    };
    if (c.kind != Json::Kind::Object) return error("not an object");
    uint64_t seqno = i;
    if (const Json* s = c.get("seqno")) {
      const auto v = as_uint(*s, UINT64_MAX);
      if (!v) return error("\"seqno\" is not a non-negative integer");
      seqno = *v;
    }
    where += " (seqno " + std::to_string(seqno) + ")";
    const Json* w = c.get("wire");
    if (!w) return error("missing \"wire\"");
    if (w->kind != Json::Kind::String) return error("\"wire\" is not a string");
    std::string why;
    if (!from_hex(w->text, wire, why)) return error("bad hex in \"wire\": " + why);
    if (const Json* t = c.get("header_table_size")) {
      const auto v = as_uint(*t, kMaxSize);
      if (!v) {
        return error("\"header_table_size\" is not an integer in [0, " +
                     std::to_string(kMaxSize) + "]");
      }
      decoder.set_max_table_size_limit(static_cast<std::size_t>(*v));
    }

    headers.clear();
    const Status st = decoder.decode(
        wire, [&](std::string_view name, std::string_view value) {
          headers.emplace_back(name, value);
        });
    if (st != Status::Ok) {
      return error(std::string(h2lab::proto::hpack::status_name(st)) + ": " +
                   decoder.error_detail());
    }

    out += i ? ",\n" : "\n";
    out += "    {\n      \"seqno\": " + std::to_string(seqno) + ",\n";
    out += "      \"wire\": \"" + to_hex(wire) + "\",\n";
    out += "      \"header_table_size\": " +
           std::to_string(decoder.table().max_size()) + ",\n";
    out += "      \"headers\": [";
    for (std::size_t k = 0; k < headers.size(); ++k) {
      out += k ? ",\n        { " : "\n        { ";
      append_json_string(out, headers[k].first);
      out += ": ";
      append_json_string(out, headers[k].second);
      out += " }";
    }
    out += headers.empty() ? "]\n    }" : "\n      ]\n    }";
  }
  out += cases->items.empty() ? "]\n}\n" : "\n  ]\n}\n";
  std::fwrite(out.data(), 1, out.size(), stdout);
  return std::fflush(stdout) == 0 ? 0 : 1;
}
