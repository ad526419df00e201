#include "server/options.h"

#include <sched.h>

#include <algorithm>
#include <array>
#include <thread>
#include <utility>

namespace h2lab::server {
namespace {

template <typename Enum, size_t N>
using NameTable = std::array<std::pair<Enum, std::string_view>, N>;

constexpr NameTable<Dispatch, 4> kDispatchNames = {{{Dispatch::kBlocking, "blocking"},
                                                    {Dispatch::kThreaded, "threaded"},
                                                    {Dispatch::kEpoll, "epoll"},
                                                    {Dispatch::kUring, "uring"}}};
constexpr NameTable<ListenerMode, 2> kListenerModeNames = {
    {{ListenerMode::kReuseport, "reuseport"}, {ListenerMode::kExclusive, "exclusive"}}};
constexpr NameTable<EngineKind, 3> kEngineNames = {{{EngineKind::kFull, "full"},
                                                    {EngineKind::kMini, "mini"},
                                                    {EngineKind::kNghttp2, "nghttp2"}}};
constexpr NameTable<EpollTrigger, 2> kEpollTriggerNames = {
    {{EpollTrigger::kEdge, "edge"}, {EpollTrigger::kLevel, "level"}}};
constexpr NameTable<WritePolicy, 2> kWritePolicyNames = {
    {{WritePolicy::kCoalesce, "coalesce"}, {WritePolicy::kPerResponse, "per-response"}}};
constexpr NameTable<TlsRecords, 2> kTlsRecordsNames = {
    {{TlsRecords::kH2lab, "h2lab"}, {TlsRecords::kOpenssl, "openssl"}}};
constexpr NameTable<unsigned, 3> kUringFlagNames = {{{uring_flag::kCoopTaskrun, "coop"},
                                                    {uring_flag::kSingleIssuer, "single"},
                                                    {uring_flag::kDeferTaskrun, "defer"}}};

template <typename Enum, size_t N>
std::string_view name_of(const NameTable<Enum, N>& table, Enum value) noexcept {
  for (const auto& [v, name] : table) {
    if (v == value) return name;
  }
  return "?";
}

template <typename Enum, size_t N>
std::optional<Enum> parse_name(const NameTable<Enum, N>& table, std::string_view name) noexcept {
  for (const auto& [v, n] : table) {
    if (n == name) return v;
  }
  return std::nullopt;
}

template <typename Enum, size_t N>
std::string choices_of(const NameTable<Enum, N>& table) {
  std::string out;
  for (const auto& entry : table) {
    if (!out.empty()) out += ", ";
    out += entry.second;
  }
  return out;
}

}  // namespace

std::string_view dispatch_name(Dispatch d) noexcept { return name_of(kDispatchNames, d); }
std::optional<Dispatch> parse_dispatch(std::string_view name) noexcept {
  return parse_name(kDispatchNames, name);
}
std::string dispatch_choices() { return choices_of(kDispatchNames); }

std::string_view listener_mode_name(ListenerMode m) noexcept {
  return name_of(kListenerModeNames, m);
}
std::optional<ListenerMode> parse_listener_mode(std::string_view name) noexcept {
  return parse_name(kListenerModeNames, name);
}
std::string listener_mode_choices() { return choices_of(kListenerModeNames); }

unsigned resolved_threads(const ServerOptions& options) noexcept {
  if (options.threads != 0) return options.threads;
  if (!options.cpus.empty()) return static_cast<unsigned>(options.cpus.size());
  cpu_set_t cpus;
  if (sched_getaffinity(0, sizeof cpus, &cpus) == 0 && CPU_COUNT(&cpus) > 0) {
    return static_cast<unsigned>(CPU_COUNT(&cpus));
  }
  return std::max(1u, std::thread::hardware_concurrency());
}

std::string_view engine_name(EngineKind e) noexcept { return name_of(kEngineNames, e); }
std::optional<EngineKind> parse_engine(std::string_view name) noexcept {
  return parse_name(kEngineNames, name);
}
std::string engine_choices() { return choices_of(kEngineNames); }

std::string_view epoll_trigger_name(EpollTrigger t) noexcept {
  return name_of(kEpollTriggerNames, t);
}
std::optional<EpollTrigger> parse_epoll_trigger(std::string_view name) noexcept {
  return parse_name(kEpollTriggerNames, name);
}
std::string epoll_trigger_choices() { return choices_of(kEpollTriggerNames); }

std::string_view write_policy_name(WritePolicy p) noexcept {
  return name_of(kWritePolicyNames, p);
}
std::optional<WritePolicy> parse_write_policy(std::string_view name) noexcept {
  return parse_name(kWritePolicyNames, name);
}
std::string write_policy_choices() { return choices_of(kWritePolicyNames); }

std::string_view tls_records_name(TlsRecords r) noexcept { return name_of(kTlsRecordsNames, r); }
std::optional<TlsRecords> parse_tls_records(std::string_view name) noexcept {
  return parse_name(kTlsRecordsNames, name);
}
std::string tls_records_choices() { return choices_of(kTlsRecordsNames); }

std::optional<unsigned> parse_uring_flags(std::string_view list) noexcept {
  if (list == "auto") return uring_flag::kAuto;
  if (list == "none") return 0u;
  unsigned flags = 0;
  while (true) {
    const size_t comma = list.find(',');
    const auto bit = parse_name(kUringFlagNames, list.substr(0, comma));
    if (!bit) return std::nullopt;
    flags |= *bit;
    if (comma == std::string_view::npos) return flags;
    list.remove_prefix(comma + 1);
  }
}

std::string uring_flags_name(unsigned flags) {
  if (flags & uring_flag::kAuto) return "auto";
  std::string out;
  for (const auto& [bit, name] : kUringFlagNames) {
    if (flags & bit) out += (out.empty() ? "" : ",") + std::string(name);
  }
  return out.empty() ? "none" : out;
}

std::string uring_flags_choices() {
  return "auto, none, or a comma-separated list of " + choices_of(kUringFlagNames);
}

std::optional<std::vector<unsigned>> parse_cpu_list(std::string_view list) noexcept {
  constexpr unsigned kMaxCpu = CPU_SETSIZE - 1;
  auto number = [](std::string_view s) -> std::optional<unsigned> {
    if (s.empty() || s.size() > 4) return std::nullopt;
    unsigned n = 0;
    for (const char c : s) {
      if (c < '0' || c > '9') return std::nullopt;
      n = n * 10 + static_cast<unsigned>(c - '0');
    }
    if (n > kMaxCpu) return std::nullopt;
    return n;
  };
  std::vector<unsigned> cpus;
  while (true) {
    const size_t comma = list.find(',');
    const std::string_view item = list.substr(0, comma);
    const size_t dash = item.find('-');
    const auto first = number(item.substr(0, dash));
    const auto last = dash == std::string_view::npos ? first : number(item.substr(dash + 1));
    if (!first || !last || *last < *first) return std::nullopt;
    for (unsigned cpu = *first; cpu <= *last; ++cpu) cpus.push_back(cpu);
    if (comma == std::string_view::npos) return cpus;
    list.remove_prefix(comma + 1);
  }
}

uint16_t resolved_port(const ServerOptions& options) noexcept {
  constexpr uint16_t kDefaultTlsPort = 8443, kDefaultCleartextPort = 8080;
  return options.port.value_or(options.tls ? kDefaultTlsPort : kDefaultCleartextPort);
}

}  // namespace h2lab::server

namespace h2lab::server {
namespace {

bool is_power_of_two(unsigned n) noexcept { return n != 0 && (n & (n - 1)) == 0; }

}  // namespace

std::string options_conflict(const ServerOptions& o) {
  const ServerOptions d;  // the defaults: a knob left alone is never a conflict
  const bool epoll = o.dispatch == Dispatch::kEpoll;
  const bool uring = o.dispatch == Dispatch::kUring;
  const bool loops = epoll || uring;
  auto only_for = [&](const char* flag, const char* what) {
    return std::string(flag) + " applies to " + what + " only (--dispatch is " +
           std::string(dispatch_name(o.dispatch)) + ")";
  };
  if (!loops && o.threads != d.threads) return only_for("--threads", "--dispatch epoll and uring");
  if (o.dispatch != Dispatch::kThreaded && o.max_threads != d.max_threads) {
    return only_for("--max-threads", "--dispatch threaded");
  }
  if (o.max_threads < 1) return "--max-threads must be at least 1";
  for (const auto& [t, flag] : {std::pair{o.idle_timeout, "--idle-timeout"},
                                {o.preface_timeout, "--preface-timeout"},
                                {o.header_timeout, "--header-timeout"},
                                {o.handshake_timeout, "--handshake-timeout"}}) {
    if (t.count() < 1) return std::string(flag) + " must be at least 1 ms";
  }
  if (!loops && o.listener_mode != d.listener_mode) {
    return only_for("--epoll-listener", "--dispatch epoll and uring");
  }
  if (!epoll) {
    if (o.epoll_trigger != d.epoll_trigger) return only_for("--epoll-trigger", "--dispatch epoll");
    if (o.epoll_max_events != d.epoll_max_events) {
      return only_for("--epoll-max-events", "--dispatch epoll");
    }
    if (o.epoll_busy_poll_us != d.epoll_busy_poll_us) {
      return only_for("--epoll-busy-poll", "--dispatch epoll");
    }
  }
  if (o.epoll_max_events < 1 || o.epoll_max_events > 65536) {
    return "--epoll-max-events must be from 1 to 65536";
  }
  if (!uring) {
    const struct {
      bool changed;
      const char* flag;
    } uring_knobs[] = {
        {o.uring_sqpoll != d.uring_sqpoll, "--uring-sqpoll"},
        {o.uring_entries != d.uring_entries, "--uring-entries"},
        {o.uring_sqpoll_idle_ms != d.uring_sqpoll_idle_ms, "--uring-sqpoll-idle"},
        {o.uring_sqpoll_cpu != d.uring_sqpoll_cpu, "--uring-sqpoll-cpu"},
        {o.uring_flags != d.uring_flags, "--uring-flags"},
        {o.uring_buffers != d.uring_buffers, "--uring-buffers"},
        {o.uring_buffer_size != d.uring_buffer_size, "--uring-buffer-size"},
        {o.uring_fixed_files != d.uring_fixed_files, "--uring-fixed-files"},
        {o.uring_registered_buffers != d.uring_registered_buffers, "--uring-registered-buffers"},
        {o.uring_send_zc_threshold != d.uring_send_zc_threshold, "--uring-send-zc"},
        {o.uring_napi_busy_poll_us != d.uring_napi_busy_poll_us, "--uring-napi"},
        {o.uring_recv_bundle != d.uring_recv_bundle, "--uring-recv-bundle"},
        {o.uring_send_bundle != d.uring_send_bundle, "--uring-send-bundle"},
        {o.uring_incremental_buffers != d.uring_incremental_buffers,
         "--uring-incremental-buffers"},
        {o.uring_register_ring_fd != d.uring_register_ring_fd, "--uring-register-ring-fd"},
        {o.uring_no_sqarray != d.uring_no_sqarray, "--uring-no-sqarray"},
    };
    for (const auto& knob : uring_knobs) {
      if (knob.changed) return only_for(knob.flag, "--dispatch uring");
    }
  }
  if (!is_power_of_two(o.uring_entries) || o.uring_entries > 32768) {
    return "--uring-entries must be a power of two from 1 to 32768";
  }
  if (!is_power_of_two(o.uring_buffers) || o.uring_buffers > 32768) {
    return "--uring-buffers must be a power of two from 1 to 32768";
  }
  if (o.uring_buffer_size < 512 || o.uring_buffer_size > 1024 * 1024) {
    return "--uring-buffer-size must be from 512 to 1048576 octets";
  }
  if (!o.uring_sqpoll && (o.uring_sqpoll_idle_ms != d.uring_sqpoll_idle_ms || o.uring_sqpoll_cpu)) {
    return "--uring-sqpoll-idle and --uring-sqpoll-cpu need --uring-sqpoll";
  }
  if (!(o.uring_flags & uring_flag::kAuto)) {
    if ((o.uring_flags & uring_flag::kDeferTaskrun) && !(o.uring_flags & uring_flag::kSingleIssuer)) {
      return "--uring-flags defer needs single as well (IORING_SETUP_DEFER_TASKRUN requires "
             "IORING_SETUP_SINGLE_ISSUER)";
    }
    if (o.uring_sqpoll && (o.uring_flags & (uring_flag::kDeferTaskrun | uring_flag::kCoopTaskrun))) {
      return "--uring-flags coop and defer cannot be combined with --uring-sqpoll (the kernel's "
             "SQPOLL thread runs the task work)";
    }
  }
  if (o.uring_send_bundle && (o.uring_registered_buffers || o.uring_send_zc_threshold != 0)) {
    return "--uring-send-bundle, --uring-registered-buffers and --uring-send-zc are three ways "
           "of sending: choose one";
  }
  if (o.tls_record_size < 512 || o.tls_record_size > 16384) {
    return "--tls-record-size must be from 512 to 16384 octets (RFC 8446 §5.1)";
  }
  if (!o.tls && o.tls_record_size != d.tls_record_size) {
    return "--tls-record-size applies to --tls on only";
  }
  if (!o.tls && o.tls_records != d.tls_records) return "--tls-records applies to --tls on only";
  if (o.incoming_cpu) {
    if (!loops || o.listener_mode != ListenerMode::kReuseport) {
      return "--incoming-cpu needs --dispatch epoll or uring with --epoll-listener reuseport "
             "(it steers connections between reuseport listeners)";
    }
    if (o.cpus.empty()) return "--incoming-cpu needs --cpus (each listener's thread on one CPU)";
  }
  if (!o.cpus.empty()) {
    cpu_set_t allowed;
    CPU_ZERO(&allowed);
    if (sched_getaffinity(0, sizeof allowed, &allowed) == 0) {
      for (const unsigned cpu : o.cpus) {
        if (cpu >= CPU_SETSIZE || !CPU_ISSET(cpu, &allowed)) {
          std::string mine;
          for (unsigned c = 0; c < CPU_SETSIZE; ++c) {
            if (CPU_ISSET(c, &allowed)) mine += (mine.empty() ? "" : ",") + std::to_string(c);
          }
          return "--cpus: this process may not run on CPU " + std::to_string(cpu) +
                 " (it may run on " + mine + ")";
        }
      }
    }
  }
  if (o.send_buffer < 0 || o.receive_buffer < 0) return "--sndbuf and --rcvbuf cannot be negative";
  return "";
}

}  // namespace h2lab::server
