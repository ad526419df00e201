// `epoll`: N reactor threads (the seed's `:async`), each with its own epoll
// instance, its own listener (SO_REUSEPORT) or a share of one (EPOLLEXCLUSIVE),
// its own connections, timer wheel and 64 KiB read buffer.
//
// One loop turn:
//   epoll_wait (at most --epoll-max-events; timeout: the next timer tick, 0
//               when work is left over)
//   listener ready  → accept a batch, admit (limit), register the socket
//                     (edge-triggered by default, --epoll-trigger level)
//   socket readable → read into the reactor's buffer until a short read (edge:
//                     until EAGAIN when RDHUP was seen; at most 16 reads, the
//                     rest on the read_again_ list), Session::on_data after
//                     each read (and TCP_QUICKACK again with --quickack); stop
//                     early while the session refuses input (backpressure)
//   socket writable → mark for writing
//   then, per connection touched this turn: a sendmsg carrying everything
//   pending; while the kernel takes all that is offered and the session has
//   more (IOV_MAX pieces, one response at a time with --write-policy
//   per-response), another — at most 64, then the next turn. EPOLLOUT is
//   registered only while output is pending and the socket is full
//   then the timer wheel: idle → GOAWAY, write/drain/linger → close
// Level-triggered, epoll reports a readable socket on every epoll_wait: a
// short read ends the reading (what is left, the FIN included, is reported
// again), and EPOLLIN is taken out of the interest set while the session
// refuses input and after the peer's EOF, or the loop would spin.
// Sessions never keep pointers into the read buffer, so connections hold no
// read buffer of their own; trim() after each turn keeps idle ones small.
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "server/accept.h"
#include "server/connection_table.h"
#include "server/dispatcher.h"
#include "server/log.h"
#include "server/loop_connection.h"
#include "server/loop_group.h"
#include "server/memory_trim.h"
#include "server/send_pending.h"
#include "server/socket_options.h"

namespace h2lab::server {
namespace {

using Clock = std::chrono::steady_clock;

constexpr size_t kReadBufferSize = 64 * 1024;
// Reads per connection per turn before the others get their turn (1 MiB).
constexpr int kMaxReadsPerTurn = 16;
// Writes per connection per turn while the kernel takes everything offered
// and the session has more: with --write-policy per-response each response
// leaves in its own write, and 64 of them bound one connection's share of a
// turn.
constexpr int kMaxWritesPerTurn = 64;
constexpr int kAcceptBatch = 64;

// epoll_event.data.u64 for the two non-connection fds; connection ids are
// never 0 or ~0.
constexpr uint64_t kListenerKey = 0;
constexpr uint64_t kWakeKey = ~uint64_t{0};

struct Conn : LoopConnection {
  using LoopConnection::LoopConnection;
  bool readable = true;      // no EAGAIN since the last edge
  bool rdhup = false;        // the peer's FIN was signalled: read to EOF
  bool writable = true;      // no short write since the last EPOLLOUT
  bool out_registered = false;
  bool in_registered = true;  // EPOLLIN | EPOLLRDHUP in the interest set (level: not always)
};


class Reactor final : public RoomMaker {
 public:
  Reactor(LoopDispatcher& d, unsigned index);
  ~Reactor();
  void loop();
  Room make_room() noexcept override;

 private:
  using Id = ConnectionTable<Conn>::Id;

  void on_event(const epoll_event& ev);
  void accept_batch();
  void add(NewConnection nc);
  void read_from(Id id, Conn& c);
  void write_to(Id id, Conn& c);
  void end_cleanly(Id id, Conn& c);
  void close(Id id, Conn& c);
  void begin_stop();
  void evict_for_others();
  void set_events(Conn& c, bool want_out);
  uint32_t trigger() const noexcept { return level_ ? 0u : static_cast<uint32_t>(EPOLLET); }
  void set_accepting(bool on);
  int wait_timeout_ms(Clock::time_point now) const;

  LoopDispatcher& d_;
  const unsigned index_;
  const ServerOptions& options_;
  ThreadStats& stats_;
  const int listen_fd_;
  const int wake_fd_;
  const bool level_;  // --epoll-trigger level
  int epfd_ = -1;
  bool accepting_ = false;
  bool draining_ = false;
  Clock::time_point accept_resume_at_ = Clock::time_point::max();
  Clock::time_point now_;
  proto::ChunkPool chunk_pool_;  // before conns_: their queues give chunks back to it
  ConnectionTable<Conn> conns_;
  TimerWheel wheel_;
  TurnQueue write_list_;        // connections to write to at the end of this turn
  std::vector<Id> read_again_;  // readable connections whose turn ended early
  std::unique_ptr<uint8_t[]> buffer_;
  MemoryTrim trim_;
};

class EpollDispatcher final : public LoopDispatcher {
 public:
  using LoopDispatcher::LoopDispatcher;
  void run() override {
    run_loops("epoll", [this](unsigned i) { Reactor(*this, i).loop(); });
  }
};

Reactor::Reactor(LoopDispatcher& d, unsigned index)
    : d_(d),
      index_(index),
      options_(d.context.options),
      stats_(d.thread_stats(index)),
      listen_fd_(d.group.listener(index)),
      wake_fd_(d.group.wake_fd(index)),
      level_(d.context.options.epoll_trigger == EpollTrigger::kLevel),
      now_(Clock::now()),
      wheel_(make_loop_timer_wheel(now_)),
      buffer_(new uint8_t[kReadBufferSize]) {
  epfd_ = ::epoll_create1(EPOLL_CLOEXEC);
  epoll_event wake{};
  wake.events = EPOLLIN;
  wake.data.u64 = kWakeKey;
  if (epfd_ < 0 || ::epoll_ctl(epfd_, EPOLL_CTL_ADD, wake_fd_, &wake) != 0) {
    log_line("epoll reactor %u: cannot set up: %s", index, std::strerror(errno));
  }
  if (options_.epoll_busy_poll_us > 0) {
    // create_server() tried this already (check_epoll_busy_poll).
    if (const std::string why = set_epoll_busy_poll(epfd_, options_.epoll_busy_poll_us);
        !why.empty()) {
      log_line("epoll reactor %u: %s", index, why.c_str());
    }
  }
  set_accepting(true);
}

Reactor::~Reactor() {
  for (Id id : conns_.ids()) close(id, *conns_.find(id));
  if (epfd_ >= 0) ::close(epfd_);
}

void Reactor::set_accepting(bool on) {
  if (on == accepting_) return;
  // The listener is level-triggered: a batch left in the backlog reports
  // again. Shared by all reactors, it wakes one of them (EPOLLEXCLUSIVE).
  epoll_event ev{};
  ev.events = EPOLLIN;
  if (d_.group.shared_listener() && d_.group.size() > 1) ev.events |= EPOLLEXCLUSIVE;
  ev.data.u64 = kListenerKey;
  if (::epoll_ctl(epfd_, on ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, listen_fd_, &ev) == 0) accepting_ = on;
}

int Reactor::wait_timeout_ms(Clock::time_point now) const {
  if (!read_again_.empty() || !write_list_.empty()) return 0;
  Clock::duration wait = Clock::duration::max();
  if (const auto next = wheel_.until_next(now)) wait = *next;
  if (const auto trim = trim_.until_due(now)) wait = std::min(wait, *trim);
  if (accept_resume_at_ != Clock::time_point::max()) {
    wait = std::min(wait, std::max(Clock::duration::zero(), accept_resume_at_ - now));
  }
  if (wait == Clock::duration::max()) return -1;
  // Round up: waking before the tick would only wake again.
  return static_cast<int>(std::chrono::ceil<std::chrono::milliseconds>(wait).count());
}

void Reactor::loop() {
  // On the heap: --epoll-max-events goes up to 65536 (768 KiB of events).
  std::vector<epoll_event> events(options_.epoll_max_events);
  const int max_events = static_cast<int>(events.size());
  while (true) {
    if (d_.group.stopping() && !draining_) begin_stop();
    if (draining_ && conns_.empty()) break;

    const int n = ::epoll_wait(epfd_, events.data(), max_events, wait_timeout_ms(Clock::now()));
    stats_.waits.add();
    stats_.syscalls.add();
    if (n > 0) stats_.events.add(static_cast<uint64_t>(n));
    if (n < 0 && errno != EINTR) {
      log_line("epoll_wait: %s", std::strerror(errno));
      break;
    }
    now_ = Clock::now();
    for (int i = 0; i < n; ++i) on_event(events[i]);

    std::vector<Id> again;
    again.swap(read_again_);
    for (Id id : again) {
      if (Conn* c = conns_.find(id)) read_from(id, *c);
    }
    evict_for_others();  // after the reads: connections accepted this turn were read once
    write_list_.drain(conns_, [this](Id id, Conn& c) { write_to(id, c); });
    expire_timeouts(
        wheel_, conns_, now_, [this](Id id, Conn& c) { write_list_.add(id, c); },
        [this](Id id, Conn& c) { close(id, c); });
    trim_.maybe_trim(conns_.size(), now_);
    if (!draining_ && now_ >= accept_resume_at_) {
      accept_resume_at_ = Clock::time_point::max();
      set_accepting(true);
    }
  }
}

void Reactor::on_event(const epoll_event& ev) {
  if (ev.data.u64 == kWakeKey) {
    uint64_t count;
    [[maybe_unused]] const ssize_t n = ::read(wake_fd_, &count, sizeof count);
    return;  // the loop looks at stopping()
  }
  if (ev.data.u64 == kListenerKey) {
    if (accepting_) accept_batch();
    return;
  }
  Conn* c = conns_.find(ev.data.u64);
  if (c == nullptr) return;  // closed earlier in this batch
  if (level_ && (ev.events & (EPOLLHUP | EPOLLERR)) && !c->lingering) {
    // Reported on every epoll_wait whatever the interest set: the peer is
    // gone (a reset, or both directions shut without ours being shut by
    // us), nothing can reach it any more — close rather than spin.
    close(ev.data.u64, *c);
    return;
  }
  if (ev.events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
    c->readable = true;
    c->rdhup = c->rdhup || (ev.events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0;
  }
  if (ev.events & (EPOLLOUT | EPOLLHUP | EPOLLERR)) {
    c->writable = true;
    write_list_.add(ev.data.u64, *c);
  }
  if (c->readable) read_from(ev.data.u64, *c);
}

void Reactor::accept_batch() {
  for (int i = 0; i < kAcceptBatch; ++i) {
    const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    stats_.syscalls.add();
    if (fd < 0) {
      const AcceptFailure f = classify_accept_error(errno);
      if (f == AcceptFailure::kRetry) continue;
      if (f == AcceptFailure::kClosed) set_accepting(false);  // stopping: no resume
      if (f == AcceptFailure::kExhausted) {
        set_accepting(false);
        accept_resume_at_ = now_ + std::chrono::milliseconds(kAcceptPauseMs);
      }
      return;
    }
    if (std::optional<NewConnection> nc = admit_connection(fd, d_.limit, d_.context, &stats_, this)) {
      nc->session->use_chunk_pool(&chunk_pool_);
      add(std::move(*nc));
    }
  }
}

Room Reactor::make_room() noexcept {
  return make_room_in(
      d_, index_, conns_, wheel_, now_, [this](Id id, Conn& c) { write_list_.add(id, c); },
      [this](Id id, Conn& c) { close(id, c); });
}

// What other reactors asked (EvictionBoard).
void Reactor::evict_for_others() {
  evict_for_other_loops(d_, index_, conns_, [this](Id id, Conn& c) { close(id, c); });
}

void Reactor::add(NewConnection nc) {
  const int fd = nc.fd;
  auto owned = std::make_unique<Conn>(std::move(nc), options_, now_);
  Conn& c = *owned;
  const Id id = conns_.add(std::move(owned));
  c.timer.key = id;
  track_setup(c, d_.board, index_);
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLRDHUP | trigger();
  ev.data.u64 = id;
  stats_.syscalls.add();
  if (::epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) != 0) {
    log_line("epoll_ctl: %s: closing a new connection", std::strerror(errno));
    close(id, c);
    return;
  }
  schedule_timeout(c, wheel_);
  if (draining_) shut_down_gracefully(c, wheel_, now_);
  // Clients speak first: the preface is usually there already.
  read_again_.push_back(id);
  write_list_.add(id, c);
}

void Reactor::read_from(Id id, Conn& c) {
  for (int reads = 0; c.readable; ++reads) {
    if (!c.lingering && !c.session->wants_read()) break;  // backpressure: resumed after a write
    if (reads == kMaxReadsPerTurn) {
      if (level_) {
        c.readable = false;  // the next epoll_wait reports the rest
      } else {
        read_again_.push_back(id);
      }
      break;
    }
    const ssize_t n = ::read(c.fd, buffer_.get(), kReadBufferSize);
    stats_.reads.add();
    stats_.syscalls.add();
    if (n > 0) {
      if (rearm_quickack(c.fd, options_)) stats_.syscalls.add();
      if (!c.lingering) {
        c.session->on_data({buffer_.get(), static_cast<size_t>(n)});
        c.deadlines.on_input(now_, c.session->progress(), static_cast<size_t>(n));
        track_setup(c, d_.board, index_);
      } else if (!c.deadlines.linger_discard(static_cast<size_t>(n))) {
        close(id, c);  // still flooding after our FIN: enough was read
        return;
      }
      // A short read emptied the socket; more data will raise a new edge.
      // Not so for the FIN: once RDHUP was seen, read on to the EOF — unless
      // level-triggered, where epoll reports the FIN again.
      if (static_cast<size_t>(n) < kReadBufferSize && (level_ || !c.rdhup)) c.readable = false;
    } else if (n == 0) {
      c.readable = false;
      c.peer_eof = true;
      if (c.lingering) {
        close(id, c);
        return;
      }
      c.session->on_eof();
    } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
      c.readable = false;
    } else if (errno != EINTR) {
      close(id, c);  // ECONNRESET and friends: nothing more to say to the peer
      return;
    }
  }
  if (!c.lingering) write_list_.add(id, c);
}

void Reactor::write_to(Id id, Conn& c) {
  if (c.lingering) return;
  Session& s = *c.session;
  size_t written = 0;
  for (int writes = 0; s.wants_write() && c.writable; ++writes) {
    if (writes == kMaxWritesPerTurn) {
      write_list_.add(id, c);  // the others' turn first; the rest next turn
      break;
    }
    const SendResult r = send_pending(c.fd, s, MSG_DONTWAIT, stats_);
    const ssize_t n = r.sent;
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
      close(id, c);  // EPIPE, ECONNRESET: the peer is gone
      return;
    }
    if (n > 0) {
      s.on_written(static_cast<size_t>(n));
      written += static_cast<size_t>(n);
    }
    // The socket is full: wait for EPOLLOUT. Else the kernel took it all;
    // what is still pending (past IOV_MAX pieces, the next response, what
    // the engine refilled) goes in the next write.
    if (!r.all_taken()) c.writable = false;
  }
  // All handed over: what TCP_CORK holds back goes now (--tcp-cork).
  if (written > 0 && !s.wants_write()) stats_.syscalls.add(push_corked(c.fd, options_));
  c.deadlines.on_write(now_, written, s.wants_write(), s.progress());
  set_events(c, s.wants_write() && !c.writable);
  if (s.wants_close()) {
    log_close_reason(c);
    end_cleanly(id, c);
    return;
  }
  schedule_timeout(c, wheel_);
  if (c.readable && s.wants_read()) {
    read_again_.push_back(id);  // input was paused by backpressure and may resume
  } else if (!s.wants_write()) {
    s.trim();
  }
}

void Reactor::set_events(Conn& c, bool want_out) {
  // Edge-triggered, EPOLLIN stays: it reports once per change. Level-
  // triggered it would report on every epoll_wait while the session refuses
  // input, or after the EOF: wanted only while reading can make progress.
  const bool want_in =
      !level_ || (!c.peer_eof && (c.lingering || c.session->wants_read()));
  if (want_out == c.out_registered && want_in == c.in_registered) return;
  epoll_event ev{};
  ev.events = trigger();
  if (want_in) ev.events |= EPOLLIN | EPOLLRDHUP;
  if (want_out) ev.events |= EPOLLOUT;
  ev.data.u64 = c.timer.key;
  stats_.syscalls.add();
  if (::epoll_ctl(epfd_, EPOLL_CTL_MOD, c.fd, &ev) == 0) {
    c.out_registered = want_out;
    c.in_registered = want_in;
  }
}

void Reactor::end_cleanly(Id id, Conn& c) {
  if (!begin_linger(c, wheel_, now_)) {
    close(id, c);
    return;
  }
  set_events(c, false);  // level: reading again, to the peer's EOF
  if (c.readable) read_again_.push_back(id);
}

void Reactor::close(Id id, Conn& c) {
  track_setup(c, d_.board, index_, /*gone=*/true);
  trim_.on_close();
  wheel_.disarm(c.timer);
  stats_.syscalls.add();
  ::close(c.fd);  // also leaves the epoll set
  conns_.remove(id);
}

void Reactor::begin_stop() {
  draining_ = true;
  set_accepting(false);
  accept_resume_at_ = Clock::time_point::max();
  now_ = Clock::now();
  for (Id id : conns_.ids()) {
    Conn& c = *conns_.find(id);
    if (c.lingering) continue;
    shut_down_gracefully(c, wheel_, now_);
    write_list_.add(id, c);
  }
}

}  // namespace

std::unique_ptr<Dispatcher> make_epoll_dispatcher(const DispatchContext& context) {
  return std::make_unique<EpollDispatcher>(context);
}

}  // namespace h2lab::server
