#include "server/options.h"

#include <array>
#include <utility>

namespace h2lab::server {
namespace {

template <typename Enum, size_t N>
using NameTable = std::array<std::pair<Enum, std::string_view>, N>;

constexpr NameTable<Dispatch, 1> kDispatchNames = {{{Dispatch::kBlocking, "blocking"}}};
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
