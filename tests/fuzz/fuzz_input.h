// A cursor over a fuzz input: the targets take their choices (chunk sizes,
// table limits, when to drain) and their bytes from the same input, so that
// libFuzzer's mutations steer both. Reads past the end yield zeros / empty
// spans, so every input is a valid script (FuzzedDataProvider's rule, without
// depending on clang's header in the g++ build).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>

namespace h2lab::fuzz {

class FuzzInput {
 public:
  FuzzInput(const uint8_t* data, size_t size) : data_(data), size_(size) {}

  bool empty() const noexcept { return pos_ >= size_; }
  size_t remaining() const noexcept { return size_ - pos_; }

  uint8_t u8() noexcept { return empty() ? 0 : data_[pos_++]; }
  uint16_t u16() noexcept {  // big endian, like the wire
    const uint16_t hi = u8();
    return static_cast<uint16_t>(hi << 8 | u8());
  }
  uint32_t u32() noexcept {
    const uint32_t hi = u16();
    return hi << 16 | u16();
  }

  // Up to `n` octets (fewer at the end of the input).
  std::span<const uint8_t> bytes(size_t n) noexcept {
    n = std::min(n, remaining());
    std::span<const uint8_t> out(data_ + pos_, n);
    pos_ += n;
    return out;
  }
  std::span<const uint8_t> rest() noexcept { return bytes(remaining()); }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
};

}  // namespace h2lab::fuzz
