// A string kept inline up to N octets and on the heap past that. The full
// engine copies a request's :method and :path out of the HPACK decoder (a
// later field of the same block may evict the table entry they came from),
// and nearly every path is longer than std::string's 15 inline octets yet
// shorter than a few hundred: this copy is one memcpy, with no allocation
// and no std::string bookkeeping, for those.
//
// Contract: view() is valid until the next assign() or the object's end.
// Copying copies the value (the inline octets in use, or the heap string).
#pragma once

#include <cstddef>
#include <cstring>
#include <string>
#include <string_view>

namespace h2lab::proto {

template <size_t N>
class ShortString {
 public:
  ShortString() noexcept {}  // the inline octets are written before they are read
  ShortString(const ShortString& other) { assign(other.view()); }
  ShortString& operator=(const ShortString& other) {
    if (this != &other) assign(other.view());
    return *this;
  }

  void assign(std::string_view value) {
    size_ = value.size();
    if (value.size() <= N) {
      if (!value.empty()) std::memcpy(inline_, value.data(), value.size());
    } else {
      heap_.assign(value);
    }
  }

  void clear() noexcept { size_ = 0; }

  std::string_view view() const noexcept {
    return size_ <= N ? std::string_view(inline_, size_) : std::string_view(heap_);
  }
  size_t size() const noexcept { return size_; }
  bool empty() const noexcept { return size_ == 0; }
  bool operator==(std::string_view other) const noexcept { return view() == other; }

 private:
  size_t size_ = 0;
  char inline_[N];
  std::string heap_;  // used only past N octets
};

}  // namespace h2lab::proto
