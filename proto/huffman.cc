// HPACK Huffman code (RFC 7541 §5.2, Appendix B). See huffman.h.
#include "proto/huffman.h"

#include <array>
#include <initializer_list>

namespace h2lab::proto::huffman {
namespace {

struct Code {
  uint32_t bits;  // right-aligned ("as hex aligned to LSB" in Appendix B)
  uint8_t len;    // "len in bits"
};

// RFC 7541 Appendix B, one row per symbol 0..255 and EOS (256). The
// static_asserts below check that the rows are the canonical, complete code
// the appendix describes, so a mistyped row does not compile; the tests
// decode every Appendix C example and cross-check against python3-hpack.
constexpr std::array<Code, 257> kCodes = {{
    {0x1ff8, 13},      // (  0)
    {0x7fffd8, 23},    // (  1)
    {0xfffffe2, 28},   // (  2)
    {0xfffffe3, 28},   // (  3)
    {0xfffffe4, 28},   // (  4)
    {0xfffffe5, 28},   // (  5)
    {0xfffffe6, 28},   // (  6)
    {0xfffffe7, 28},   // (  7)
    {0xfffffe8, 28},   // (  8)
    {0xffffea, 24},    // (  9)
    {0x3ffffffc, 30},  // ( 10)
    {0xfffffe9, 28},   // ( 11)
    {0xfffffea, 28},   // ( 12)
    {0x3ffffffd, 30},  // ( 13)
    {0xfffffeb, 28},   // ( 14)
    {0xfffffec, 28},   // ( 15)
    {0xfffffed, 28},   // ( 16)
    {0xfffffee, 28},   // ( 17)
    {0xfffffef, 28},   // ( 18)
    {0xffffff0, 28},   // ( 19)
    {0xffffff1, 28},   // ( 20)
    {0xffffff2, 28},   // ( 21)
    {0x3ffffffe, 30},  // ( 22)
    {0xffffff3, 28},   // ( 23)
    {0xffffff4, 28},   // ( 24)
    {0xffffff5, 28},   // ( 25)
    {0xffffff6, 28},   // ( 26)
    {0xffffff7, 28},   // ( 27)
    {0xffffff8, 28},   // ( 28)
    {0xffffff9, 28},   // ( 29)
    {0xffffffa, 28},   // ( 30)
    {0xffffffb, 28},   // ( 31)
    {0x14, 6},         // ( 32) ' '
    {0x3f8, 10},       // ( 33) '!'
    {0x3f9, 10},       // ( 34) '"'
    {0xffa, 12},       // ( 35) '#'
    {0x1ff9, 13},      // ( 36) '$'
    {0x15, 6},         // ( 37) '%'
    {0xf8, 8},         // ( 38) '&'
    {0x7fa, 11},       // ( 39) '''
    {0x3fa, 10},       // ( 40) '('
    {0x3fb, 10},       // ( 41) ')'
    {0xf9, 8},         // ( 42) '*'
    {0x7fb, 11},       // ( 43) '+'
    {0xfa, 8},         // ( 44) ','
    {0x16, 6},         // ( 45) '-'
    {0x17, 6},         // ( 46) '.'
    {0x18, 6},         // ( 47) '/'
    {0x0, 5},          // ( 48) '0'
    {0x1, 5},          // ( 49) '1'
    {0x2, 5},          // ( 50) '2'
    {0x19, 6},         // ( 51) '3'
    {0x1a, 6},         // ( 52) '4'
    {0x1b, 6},         // ( 53) '5'
    {0x1c, 6},         // ( 54) '6'
    {0x1d, 6},         // ( 55) '7'
    {0x1e, 6},         // ( 56) '8'
    {0x1f, 6},         // ( 57) '9'
    {0x5c, 7},         // ( 58) ':'
    {0xfb, 8},         // ( 59) ';'
    {0x7ffc, 15},      // ( 60) '<'
    {0x20, 6},         // ( 61) '='
    {0xffb, 12},       // ( 62) '>'
    {0x3fc, 10},       // ( 63) '?'
    {0x1ffa, 13},      // ( 64) '@'
    {0x21, 6},         // ( 65) 'A'
    {0x5d, 7},         // ( 66) 'B'
    {0x5e, 7},         // ( 67) 'C'
    {0x5f, 7},         // ( 68) 'D'
    {0x60, 7},         // ( 69) 'E'
    {0x61, 7},         // ( 70) 'F'
    {0x62, 7},         // ( 71) 'G'
    {0x63, 7},         // ( 72) 'H'
    {0x64, 7},         // ( 73) 'I'
    {0x65, 7},         // ( 74) 'J'
    {0x66, 7},         // ( 75) 'K'
    {0x67, 7},         // ( 76) 'L'
    {0x68, 7},         // ( 77) 'M'
    {0x69, 7},         // ( 78) 'N'
    {0x6a, 7},         // ( 79) 'O'
    {0x6b, 7},         // ( 80) 'P'
    {0x6c, 7},         // ( 81) 'Q'
    {0x6d, 7},         // ( 82) 'R'
    {0x6e, 7},         // ( 83) 'S'
    {0x6f, 7},         // ( 84) 'T'
    {0x70, 7},         // ( 85) 'U'
    {0x71, 7},         // ( 86) 'V'
    {0x72, 7},         // ( 87) 'W'
    {0xfc, 8},         // ( 88) 'X'
    {0x73, 7},         // ( 89) 'Y'
    {0xfd, 8},         // ( 90) 'Z'
    {0x1ffb, 13},      // ( 91) '['
    {0x7fff0, 19},     // ( 92) '\'
    {0x1ffc, 13},      // ( 93) ']'
    {0x3ffc, 14},      // ( 94) '^'
    {0x22, 6},         // ( 95) '_'
    {0x7ffd, 15},      // ( 96) '`'
    {0x3, 5},          // ( 97) 'a'
    {0x23, 6},         // ( 98) 'b'
    {0x4, 5},          // ( 99) 'c'
    {0x24, 6},         // (100) 'd'
    {0x5, 5},          // (101) 'e'
    {0x25, 6},         // (102) 'f'
    {0x26, 6},         // (103) 'g'
    {0x27, 6},         // (104) 'h'
    {0x6, 5},          // (105) 'i'
    {0x74, 7},         // (106) 'j'
    {0x75, 7},         // (107) 'k'
    {0x28, 6},         // (108) 'l'
    {0x29, 6},         // (109) 'm'
    {0x2a, 6},         // (110) 'n'
    {0x7, 5},          // (111) 'o'
    {0x2b, 6},         // (112) 'p'
    {0x76, 7},         // (113) 'q'
    {0x2c, 6},         // (114) 'r'
    {0x8, 5},          // (115) 's'
    {0x9, 5},          // (116) 't'
    {0x2d, 6},         // (117) 'u'
    {0x77, 7},         // (118) 'v'
    {0x78, 7},         // (119) 'w'
    {0x79, 7},         // (120) 'x'
    {0x7a, 7},         // (121) 'y'
    {0x7b, 7},         // (122) 'z'
    {0x7ffe, 15},      // (123) '{'
    {0x7fc, 11},       // (124) '|'
    {0x3ffd, 14},      // (125) '}'
    {0x1ffd, 13},      // (126) '~'
    {0xffffffc, 28},   // (127)
    {0xfffe6, 20},     // (128)
    {0x3fffd2, 22},    // (129)
    {0xfffe7, 20},     // (130)
    {0xfffe8, 20},     // (131)
    {0x3fffd3, 22},    // (132)
    {0x3fffd4, 22},    // (133)
    {0x3fffd5, 22},    // (134)
    {0x7fffd9, 23},    // (135)
    {0x3fffd6, 22},    // (136)
    {0x7fffda, 23},    // (137)
    {0x7fffdb, 23},    // (138)
    {0x7fffdc, 23},    // (139)
    {0x7fffdd, 23},    // (140)
    {0x7fffde, 23},    // (141)
    {0xffffeb, 24},    // (142)
    {0x7fffdf, 23},    // (143)
    {0xffffec, 24},    // (144)
    {0xffffed, 24},    // (145)
    {0x3fffd7, 22},    // (146)
    {0x7fffe0, 23},    // (147)
    {0xffffee, 24},    // (148)
    {0x7fffe1, 23},    // (149)
    {0x7fffe2, 23},    // (150)
    {0x7fffe3, 23},    // (151)
    {0x7fffe4, 23},    // (152)
    {0x1fffdc, 21},    // (153)
    {0x3fffd8, 22},    // (154)
    {0x7fffe5, 23},    // (155)
    {0x3fffd9, 22},    // (156)
    {0x7fffe6, 23},    // (157)
    {0x7fffe7, 23},    // (158)
    {0xffffef, 24},    // (159)
    {0x3fffda, 22},    // (160)
    {0x1fffdd, 21},    // (161)
    {0xfffe9, 20},     // (162)
    {0x3fffdb, 22},    // (163)
    {0x3fffdc, 22},    // (164)
    {0x7fffe8, 23},    // (165)
    {0x7fffe9, 23},    // (166)
    {0x1fffde, 21},    // (167)
    {0x7fffea, 23},    // (168)
    {0x3fffdd, 22},    // (169)
    {0x3fffde, 22},    // (170)
    {0xfffff0, 24},    // (171)
    {0x1fffdf, 21},    // (172)
    {0x3fffdf, 22},    // (173)
    {0x7fffeb, 23},    // (174)
    {0x7fffec, 23},    // (175)
    {0x1fffe0, 21},    // (176)
    {0x1fffe1, 21},    // (177)
    {0x3fffe0, 22},    // (178)
    {0x1fffe2, 21},    // (179)
    {0x7fffed, 23},    // (180)
    {0x3fffe1, 22},    // (181)
    {0x7fffee, 23},    // (182)
    {0x7fffef, 23},    // (183)
    {0xfffea, 20},     // (184)
    {0x3fffe2, 22},    // (185)
    {0x3fffe3, 22},    // (186)
    {0x3fffe4, 22},    // (187)
    {0x7ffff0, 23},    // (188)
    {0x3fffe5, 22},    // (189)
    {0x3fffe6, 22},    // (190)
    {0x7ffff1, 23},    // (191)
    {0x3ffffe0, 26},   // (192)
    {0x3ffffe1, 26},   // (193)
    {0xfffeb, 20},     // (194)
    {0x7fff1, 19},     // (195)
    {0x3fffe7, 22},    // (196)
    {0x7ffff2, 23},    // (197)
    {0x3fffe8, 22},    // (198)
    {0x1ffffec, 25},   // (199)
    {0x3ffffe2, 26},   // (200)
    {0x3ffffe3, 26},   // (201)
    {0x3ffffe4, 26},   // (202)
    {0x7ffffde, 27},   // (203)
    {0x7ffffdf, 27},   // (204)
    {0x3ffffe5, 26},   // (205)
    {0xfffff1, 24},    // (206)
    {0x1ffffed, 25},   // (207)
    {0x7fff2, 19},     // (208)
    {0x1fffe3, 21},    // (209)
    {0x3ffffe6, 26},   // (210)
    {0x7ffffe0, 27},   // (211)
    {0x7ffffe1, 27},   // (212)
    {0x3ffffe7, 26},   // (213)
    {0x7ffffe2, 27},   // (214)
    {0xfffff2, 24},    // (215)
    {0x1fffe4, 21},    // (216)
    {0x1fffe5, 21},    // (217)
    {0x3ffffe8, 26},   // (218)
    {0x3ffffe9, 26},   // (219)
    {0xffffffd, 28},   // (220)
    {0x7ffffe3, 27},   // (221)
    {0x7ffffe4, 27},   // (222)
    {0x7ffffe5, 27},   // (223)
    {0xfffec, 20},     // (224)
    {0xfffff3, 24},    // (225)
    {0xfffed, 20},     // (226)
    {0x1fffe6, 21},    // (227)
    {0x3fffe9, 22},    // (228)
    {0x1fffe7, 21},    // (229)
    {0x1fffe8, 21},    // (230)
    {0x7ffff3, 23},    // (231)
    {0x3fffea, 22},    // (232)
    {0x3fffeb, 22},    // (233)
    {0x1ffffee, 25},   // (234)
    {0x1ffffef, 25},   // (235)
    {0xfffff4, 24},    // (236)
    {0xfffff5, 24},    // (237)
    {0x3ffffea, 26},   // (238)
    {0x7ffff4, 23},    // (239)
    {0x3ffffeb, 26},   // (240)
    {0x7ffffe6, 27},   // (241)
    {0x3ffffec, 26},   // (242)
    {0x3ffffed, 26},   // (243)
    {0x7ffffe7, 27},   // (244)
    {0x7ffffe8, 27},   // (245)
    {0x7ffffe9, 27},   // (246)
    {0x7ffffea, 27},   // (247)
    {0x7ffffeb, 27},   // (248)
    {0xffffffe, 28},   // (249)
    {0x7ffffec, 27},   // (250)
    {0x7ffffed, 27},   // (251)
    {0x7ffffee, 27},   // (252)
    {0x7ffffef, 27},   // (253)
    {0x7fffff0, 27},   // (254)
    {0x3ffffee, 26},   // (255)
    {0x3fffffff, 30},  // (256) EOS
}};

constexpr int kSymbols = 257;
constexpr int kEos = 256;
constexpr int kMinLen = 5;
constexpr int kMaxLen = 30;

// Appendix B is a canonical code: sorted by (length, symbol), each code is
// the previous one plus one, shifted left by the length difference.
constexpr bool is_canonical() {
  uint32_t next = 0;
  int prev_len = kMinLen;
  bool first = true;
  for (int len = 1; len <= kMaxLen; ++len) {
    for (int s = 0; s < kSymbols; ++s) {
      if (kCodes[s].len != len) continue;
      if (first) {
        if (len != kMinLen) return false;
        first = false;
      } else {
        next = (next + 1) << (len - prev_len);
      }
      prev_len = len;
      if (kCodes[s].bits != next) return false;
    }
  }
  // Complete: after the last (longest) code every bit pattern is used.
  return next == (uint32_t{1} << kMaxLen) - 1;
}
static_assert(is_canonical(), "Appendix B rows are not the canonical code");
static_assert(kCodes[kEos].bits == 0x3fffffff && kCodes[kEos].len == 30,
              "EOS is thirty ones (§5.2)");

// The code tree: 257 leaves, hence 256 internal nodes; node 0 is the root.
// These internal nodes are the states of the decoding automaton: a state is
// "the bits read since the last complete symbol".
constexpr int kStates = 256;
constexpr int16_t kUnset = INT16_MIN;

struct Tree {
  // child >= 0: internal node; child < 0: leaf for symbol -(child + 1).
  int16_t child[kStates][2];
  uint8_t depth[kStates];
  bool all_ones[kStates];
};

constexpr Tree build_tree() {
  Tree t{};
  for (auto& c : t.child) c[0] = c[1] = kUnset;
  t.depth[0] = 0;
  t.all_ones[0] = true;
  int nodes = 1;
  for (int s = 0; s < kSymbols; ++s) {
    int node = 0;
    for (int i = kCodes[s].len - 1; i >= 0; --i) {
      const int bit = (kCodes[s].bits >> i) & 1;
      int16_t& c = t.child[node][bit];
      if (i == 0) {
        if (c != kUnset) throw "Appendix B: code is a prefix of another";
        c = static_cast<int16_t>(-(s + 1));
        break;
      }
      if (c == kUnset) {
        if (nodes == kStates) throw "Appendix B: too many internal nodes";
        c = static_cast<int16_t>(nodes);
        t.depth[nodes] = static_cast<uint8_t>(t.depth[node] + 1);
        t.all_ones[nodes] = t.all_ones[node] && bit == 1;
        ++nodes;
      } else if (c < 0) {
        throw "Appendix B: a code extends another";
      }
      node = c;
    }
  }
  if (nodes != kStates) throw "Appendix B: tree is not complete";
  for (const auto& c : t.child) {
    if (c[0] == kUnset || c[1] == kUnset) throw "Appendix B: missing leaf";
  }
  return t;
}

constexpr uint8_t kEmit = 1;  // the transition completes symbol `sym`
constexpr uint8_t kFail = 2;  // the transition completes EOS (§5.2 error)

struct Transition {
  uint8_t next;   // state after the nibble
  uint8_t flags;  // kEmit | kFail
  uint8_t sym;    // valid with kEmit
};

// What it means to run out of input in a state (§5.2 padding rules).
enum class End : uint8_t { Accept, TooLong, NotEos };

struct Automaton {
  Transition next[kStates][16];
  End end[kStates];
};

constexpr Automaton build_automaton() {
  const Tree t = build_tree();
  Automaton a{};
  for (int s = 0; s < kStates; ++s) {
    a.end[s] = !t.all_ones[s]     ? End::NotEos
               : t.depth[s] > 7   ? End::TooLong
                                  : End::Accept;
    for (int nib = 0; nib < 16; ++nib) {
      Transition tr{0, 0, 0};
      int node = s;
      for (int i = 3; i >= 0; --i) {
        const int c = t.child[node][(nib >> i) & 1];
        if (c >= 0) {
          node = c;
          continue;
        }
        const int sym = -c - 1;
        if (sym == kEos) {
          if (tr.flags & kEmit) throw "a nibble completes a symbol and EOS";
          tr.flags = kFail;
          break;
        }
        // Codes are at least 5 bits long, so one nibble completes at most
        // one symbol.
        if (tr.flags & kEmit) throw "two symbols in one nibble";
        tr.flags = kEmit;
        tr.sym = static_cast<uint8_t>(sym);
        node = 0;
      }
      tr.next = static_cast<uint8_t>(node);
      a.next[s][nib] = tr;
    }
  }
  return a;
}


// The transitions packed into one word each, so that a step is one load and
// a few shifts: bits 0-7 the symbol, 8-15 the next state, 16 "emit", 17
// "EOS completed" (a step that completes EOS emits nothing: EOS is 30 bits
// long, so no symbol ends in the same nibble). The decoder takes a whole octet (two steps) per turn of
// its loop and writes the symbols without a branch.
constexpr uint32_t kEmitBit = 1u << 16;
constexpr uint32_t kFailBit = 1u << 17;

struct PackedAutomaton {
  uint32_t next[kStates][16];
  End end[kStates];
};

constexpr PackedAutomaton pack(const Automaton& a) {
  PackedAutomaton p{};
  for (int s = 0; s < kStates; ++s) {
    for (int nib = 0; nib < 16; ++nib) {
      const Transition& tr = a.next[s][nib];
      p.next[s][nib] = uint32_t{tr.sym} | uint32_t{tr.next} << 8 |
                       ((tr.flags & kEmit) ? kEmitBit : 0) | ((tr.flags & kFail) ? kFailBit : 0);
    }
    p.end[s] = a.end[s];
  }
  return p;
}

constexpr PackedAutomaton kPacked = pack(build_automaton());

constexpr uint8_t next_state(uint32_t step) { return static_cast<uint8_t>(step >> 8); }
constexpr std::size_t emitted(uint32_t step) { return (step >> 16) & 1; }

template <bool kWrite>
DecodeResult run(std::span<const uint8_t> in, char* out,
                 std::size_t cap) noexcept {
  std::size_t n = 0;
  uint8_t state = 0;
  for (const uint8_t byte : in) {
    const uint32_t hi = kPacked.next[state][byte >> 4];
    const uint32_t lo = kPacked.next[next_state(hi)][byte & 0xfu];
    // Rare turns, one nibble at a time: an EOS in the string, or an output
    // too small for the (at most two) symbols this octet completes.
    const bool near_end = kWrite && cap - n < 2;
    if (((hi | lo) & kFailBit) != 0 || near_end) [[unlikely]] {
      for (const uint32_t step : {hi, lo}) {
        if (step & kFailBit) return {Status::EosInString, n};
        if (step & kEmitBit) {
          if (kWrite && n == cap) return {Status::OutputTooSmall, n};
          if constexpr (kWrite) out[n] = static_cast<char>(step);
          ++n;
        }
      }
    } else {
      if constexpr (kWrite) {
        out[n] = static_cast<char>(hi);  // overwritten below unless emitted
        n += emitted(hi);
        out[n] = static_cast<char>(lo);
        n += emitted(lo);
      } else {
        n += emitted(hi) + emitted(lo);
      }
    }
    state = next_state(lo);
  }
  switch (kPacked.end[state]) {
    case End::Accept:
      return {Status::Ok, n};
    case End::TooLong:
      return {Status::PaddingTooLong, n};
    case End::NotEos:
      break;
  }
  return {Status::PaddingNotEos, n};
}

}  // namespace

const char* describe(Status s) noexcept {
  switch (s) {
    case Status::Ok:
      return "ok";
    case Status::EosInString:
      return "Huffman string contains EOS";
    case Status::PaddingTooLong:
      return "Huffman padding longer than 7 bits";
    case Status::PaddingNotEos:
      return "Huffman padding is not a prefix of EOS";
    case Status::OutputTooSmall:
      return "Huffman output does not fit";
  }
  return "unknown Huffman status";
}

DecodeResult decode(std::span<const uint8_t> in,
                    std::span<char> out) noexcept {
  return run<true>(in, out.data(), out.size());
}

DecodeResult decoded_length(std::span<const uint8_t> in) noexcept {
  return run<false>(in, nullptr, 0);
}

std::size_t encoded_length(std::string_view in) noexcept {
  uint64_t bits = 0;
  for (const unsigned char c : in) bits += kCodes[c].len;
  return static_cast<std::size_t>((bits + 7) / 8);
}

std::optional<std::size_t> encode(std::string_view in,
                                  std::span<uint8_t> out) noexcept {
  // At most 7 pending bits plus one 30-bit code: 37 bits fit in 64. Bits
  // above the pending ones are shifted out and never read.
  uint64_t acc = 0;
  unsigned pending = 0;
  std::size_t n = 0;
  for (const unsigned char c : in) {
    acc = (acc << kCodes[c].len) | kCodes[c].bits;
    pending += kCodes[c].len;
    while (pending >= 8) {
      pending -= 8;
      if (n == out.size()) return std::nullopt;
      out[n++] = static_cast<uint8_t>(acc >> pending);
    }
  }
  if (pending > 0) {
    // §5.2: pad with the most significant bits of EOS (ones).
    if (n == out.size()) return std::nullopt;
    out[n++] = static_cast<uint8_t>((acc << (8 - pending)) | (0xffu >> pending));
  }
  return n;
}

}  // namespace h2lab::proto::huffman
