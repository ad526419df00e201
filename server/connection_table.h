// The connections of one reactor (epoll) or proactor (uring) thread, named by
// ids that are never reused: an event or completion that arrives for a
// connection already closed (later in the same epoll_wait batch, or a CQE
// still in flight) finds nothing instead of a stranger in the same slot.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

namespace h2lab::server {

template <typename T>
class ConnectionTable {
 public:
  // (generation << 32) | slot index. Generations take 28 bits, so an id
  // fits in 60 bits and leaves 4 for a tag (uring's operation type). Never 0.
  using Id = uint64_t;
  static constexpr unsigned kIdBits = 60;

  Id add(std::unique_ptr<T> item) {
    uint32_t index;
    if (free_.empty()) {
      index = static_cast<uint32_t>(slots_.size());
      slots_.push_back(Slot{});
    } else {
      index = free_.back();
      free_.pop_back();
    }
    Slot& s = slots_[index];
    s.item = std::move(item);
    ++size_;
    return (static_cast<Id>(s.generation) << 32) | index;
  }

  T* find(Id id) const noexcept {
    const uint32_t index = static_cast<uint32_t>(id);
    if (index >= slots_.size()) return nullptr;
    const Slot& s = slots_[index];
    return s.generation == static_cast<uint32_t>(id >> 32) ? s.item.get() : nullptr;
  }

  // Destroys the item; its id is dead from now on.
  void remove(Id id) noexcept {
    const uint32_t index = static_cast<uint32_t>(id);
    if (find(id) == nullptr) return;
    Slot& s = slots_[index];
    s.item.reset();
    s.generation = (s.generation + 1) & kGenerationMask;
    if (s.generation == 0) s.generation = 1;
    free_.push_back(index);
    --size_;
  }

  size_t size() const noexcept { return size_; }
  bool empty() const noexcept { return size_ == 0; }

  // Calls fn(id, item) for every item alive now; fn must not add or remove.
  template <typename Fn>
  void for_each(Fn&& fn) const {
    for (uint32_t i = 0; i < slots_.size(); ++i) {
      if (slots_[i].item) fn((static_cast<Id>(slots_[i].generation) << 32) | i, *slots_[i].item);
    }
  }

  // The ids alive now (to visit every connection while closing some).
  std::vector<Id> ids() const {
    std::vector<Id> out;
    out.reserve(size_);
    for (uint32_t i = 0; i < slots_.size(); ++i) {
      if (slots_[i].item) out.push_back((static_cast<Id>(slots_[i].generation) << 32) | i);
    }
    return out;
  }

 private:
  static constexpr uint32_t kGenerationMask = (1u << (kIdBits - 32)) - 1;
  struct Slot {
    std::unique_ptr<T> item;
    uint32_t generation = 1;
  };
  std::vector<Slot> slots_;
  std::vector<uint32_t> free_;
  size_t size_ = 0;
};

}  // namespace h2lab::server
