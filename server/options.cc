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
constexpr NameTable<EngineKind, 2> kEngineNames = {
    {{EngineKind::kFull, "full"}, {EngineKind::kMini, "mini"}}};

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

uint16_t resolved_port(const ServerOptions& options) noexcept {
  constexpr uint16_t kDefaultTlsPort = 8443, kDefaultCleartextPort = 8080;
  return options.port.value_or(options.tls ? kDefaultTlsPort : kDefaultCleartextPort);
}

}  // namespace h2lab::server
