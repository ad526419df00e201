#include "server/stats.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>

namespace h2lab::server {
namespace {

using Clock = std::chrono::steady_clock;

// The counters with their JSON names, in the order they are rendered.
struct Field {
  const char* name;
  uint64_t StatsRegistry::Totals::*total;
  Counter ThreadStats::*counter;
};
constexpr Field kFields[] = {
    {"connections", &StatsRegistry::Totals::connections, &ThreadStats::connections},
    {"requests", &StatsRegistry::Totals::requests, &ThreadStats::requests},
    {"responses", &StatsRegistry::Totals::responses, &ThreadStats::responses},
    {"bytes_in", &StatsRegistry::Totals::bytes_in, &ThreadStats::bytes_in},
    {"bytes_out", &StatsRegistry::Totals::bytes_out, &ThreadStats::bytes_out},
    {"backpressure_pauses", &StatsRegistry::Totals::backpressure_pauses,
     &ThreadStats::backpressure_pauses},
    {"reads", &StatsRegistry::Totals::reads, &ThreadStats::reads},
    {"writes", &StatsRegistry::Totals::writes, &ThreadStats::writes},
    {"partial_writes", &StatsRegistry::Totals::partial_writes, &ThreadStats::partial_writes},
    {"syscalls", &StatsRegistry::Totals::syscalls, &ThreadStats::syscalls},
    {"waits", &StatsRegistry::Totals::waits, &ThreadStats::waits},
    {"events", &StatsRegistry::Totals::events, &ThreadStats::events},
    {"buffer_exhaustion", &StatsRegistry::Totals::buffer_exhaustion,
     &ThreadStats::buffer_exhaustion},
    {"zero_copy_sends", &StatsRegistry::Totals::zero_copy_sends, &ThreadStats::zero_copy_sends},
    {"bundled_reads", &StatsRegistry::Totals::bundled_reads, &ThreadStats::bundled_reads},
    {"bundled_sends", &StatsRegistry::Totals::bundled_sends, &ThreadStats::bundled_sends},
    {"buffers_kept", &StatsRegistry::Totals::buffers_kept, &ThreadStats::buffers_kept},
};

// RFC 9113 §7, for the "goaways" object's keys.
constexpr const char* kErrorCodeNames[kGoawayCodes] = {
    "NO_ERROR",           "PROTOCOL_ERROR",    "INTERNAL_ERROR",     "FLOW_CONTROL_ERROR",
    "SETTINGS_TIMEOUT",   "STREAM_CLOSED",     "FRAME_SIZE_ERROR",   "REFUSED_STREAM",
    "CANCEL",             "COMPRESSION_ERROR", "CONNECT_ERROR",      "ENHANCE_YOUR_CALM",
    "INADEQUATE_SECURITY", "HTTP_1_1_REQUIRED", "OTHER"};

// a / b with two decimals, or 0 when b is 0.
std::string ratio(uint64_t a, uint64_t b) {
  char text[32];
  std::snprintf(text, sizeof text, "%.2f", b == 0 ? 0.0 : static_cast<double>(a) / b);
  return text;
}

std::string render_counters(const StatsRegistry::Totals& t) {
  std::string json;
  for (const Field& f : kFields) {
    json += std::string(json.empty() ? "" : ", ") + "\"" + f.name + "\": " +
            std::to_string(t.*f.total);
  }
  // Derived ratios the bench harness and the docs use.
  json += ", \"syscalls_per_request\": " + ratio(t.syscalls, t.requests);
  json += ", \"requests_per_wait\": " + ratio(t.requests, t.waits);
  json += ", \"events_per_wait\": " + ratio(t.events, t.waits);
  json += ", \"writes_per_response\": " + ratio(t.writes, t.responses);
  json += ", \"goaways\": {";
  bool first = true;
  for (unsigned code = 0; code < kGoawayCodes; ++code) {
    if (t.goaways[code] == 0) continue;
    json += std::string(first ? "" : ", ") + "\"" + kErrorCodeNames[code] +
            "\": " + std::to_string(t.goaways[code]);
    first = false;
  }
  json += "}, \"latency\": {\"count\": " + std::to_string(t.latency_count());
  json += ", \"mean_ns\": " + std::to_string(t.latency_count() == 0
                                                  ? 0
                                                  : t.latency_total_ns / t.latency_count());
  for (const auto& [name, q] : {std::pair{"p50_ns", 0.5}, {"p90_ns", 0.9}, {"p99_ns", 0.99},
                                {"p999_ns", 0.999}, {"max_ns", 1.0}}) {
    json += std::string(", \"") + name + "\": " + std::to_string(t.latency_quantile_ns(q));
  }
  json += ", \"buckets\": [";
  first = true;
  for (unsigned b = 0; b < LatencyHistogram::kBuckets; ++b) {
    if (t.latency[b] == 0) continue;
    json += std::string(first ? "" : ", ") + "{\"below_ns\": " +
            std::to_string(LatencyHistogram::bucket_limit_ns(b)) +
            ", \"count\": " + std::to_string(t.latency[b]) + "}";
    first = false;
  }
  return json + "]}";
}

std::string render_connections(const ConnectionCounts& c) {
  return "{\"active\": " + std::to_string(c.active) + ", \"accepted\": " +
         std::to_string(c.accepted) + ", \"refused\": " + std::to_string(c.refused) +
         ", \"dropped\": " + std::to_string(c.dropped) + ", \"evicted\": {\"handshake\": " +
         std::to_string(c.evicted_handshake) + ", \"preface\": " + std::to_string(c.evicted_preface) +
         ", \"idle\": " + std::to_string(c.evicted_idle) + "}}";
}

// Seconds from µs, three decimals.
std::string seconds_text(uint64_t us) {
  char text[32];
  std::snprintf(text, sizeof text, "%.3f", static_cast<double>(us) / 1e6);
  return text;
}

// The "process" object: CPU time and context switches since the server
// started, and the switches per request served meanwhile.
std::string render_usage(const ProcessUsage& u, uint64_t requests) {
  return "{\"user_cpu_s\": " + seconds_text(u.user_us) + ", \"system_cpu_s\": " +
         seconds_text(u.system_us) + ", \"voluntary_context_switches\": " +
         std::to_string(u.voluntary_switches) + ", \"involuntary_context_switches\": " +
         std::to_string(u.involuntary_switches) + ", \"voluntary_switches_per_request\": " +
         ratio(u.voluntary_switches, requests) + ", \"involuntary_switches_per_request\": " +
         ratio(u.involuntary_switches, requests) + "}";
}

std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (const char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    if (static_cast<unsigned char>(c) >= 0x20) out += c;
  }
  return out + "\"";
}

// Microseconds, for the human-readable lines.
double us(uint64_t ns) { return static_cast<double>(ns) / 1000.0; }

}  // namespace

void StatsRegistry::Totals::add(const ThreadStats& s) noexcept {
  for (const Field& f : kFields) this->*f.total += (s.*f.counter).get();
  for (unsigned code = 0; code < kGoawayCodes; ++code) goaways[code] += s.goaways[code].get();
  for (unsigned b = 0; b < LatencyHistogram::kBuckets; ++b) latency[b] += s.latency.count(b);
  latency_total_ns += s.latency.total_ns();
}

uint64_t StatsRegistry::Totals::latency_count() const noexcept {
  uint64_t n = 0;
  for (const uint64_t c : latency) n += c;
  return n;
}

uint64_t StatsRegistry::Totals::latency_quantile_ns(double fraction) const noexcept {
  const uint64_t n = latency_count();
  if (n == 0) return 0;
  // The rank of the sample wanted, 1-based: the last one for fraction 1.
  const auto rank = std::max<uint64_t>(1, static_cast<uint64_t>(fraction * static_cast<double>(n) + 0.999999));
  uint64_t seen = 0;
  for (unsigned b = 0; b < LatencyHistogram::kBuckets; ++b) {
    seen += latency[b];
    if (seen >= rank) return LatencyHistogram::bucket_limit_ns(b);
  }
  return LatencyHistogram::bucket_limit_ns(LatencyHistogram::kBuckets - 1);
}

StatsRegistry::StatsRegistry()
    : started_(Clock::now()),
      usage_at_start_(process_usage()),
      last_live_at_(started_),
      last_live_usage_(usage_at_start_) {}
StatsRegistry::~StatsRegistry() = default;

ThreadStats& StatsRegistry::open(std::string thread_name) {
  std::lock_guard lock(mutex_);
  live_.push_back(std::make_unique<ThreadStats>(std::move(thread_name)));
  return *live_.back();
}

void StatsRegistry::retire(ThreadStats& stats) {
  std::lock_guard lock(mutex_);
  finished_.add(stats);
  const auto it = std::find_if(live_.begin(), live_.end(),
                               [&](const auto& p) { return p.get() == &stats; });
  if (it != live_.end()) live_.erase(it);
}

StatsRegistry::Totals StatsRegistry::totals() const {
  std::lock_guard lock(mutex_);
  Totals t = finished_;
  for (const auto& s : live_) t.add(*s);
  return t;
}

std::string StatsRegistry::json(const ConnectionCounts& connections) const {
  std::lock_guard lock(mutex_);
  Totals all = finished_;
  std::string threads;
  for (const auto& s : live_) {
    Totals one;
    one.add(*s);
    all.add(*s);
    threads += std::string(threads.empty() ? "" : ", ") + "{\"name\": " + json_string(s->name) +
               ", " + render_counters(one) + "}";
  }
  char uptime[32];
  std::snprintf(uptime, sizeof uptime, "%.3f",
                std::chrono::duration<double>(Clock::now() - started_).count());
  return "{" + description_ + (description_.empty() ? "" : ", ") + "\"uptime_s\": " + uptime +
         ", \"connections\": " + render_connections(connections) +
         ", \"process\": " + render_usage(process_usage().since(usage_at_start_), all.requests) +
         ", \"totals\": {" +
         render_counters(all) + "}, \"threads\": [" + threads + "]}";
}

std::string StatsRegistry::summary(const ConnectionCounts& connections) const {
  const Totals t = totals();
  char text[1024];
  std::snprintf(
      text, sizeof text,
      "%" PRIu64 " connections (%" PRIu64 " refused), %" PRIu64 " requests, %" PRIu64
      " responses, %" PRIu64 " octets in, %" PRIu64 " out\n"
      "%" PRIu64 " reads, %" PRIu64 " writes (%" PRIu64 " partial), %" PRIu64
      " syscalls (%s per request), %" PRIu64 " waits (%s requests per wait), %" PRIu64
      " backpressure pauses\n"
      "latency: mean %.1f µs, p50 < %.1f µs, p99 < %.1f µs, max < %.1f µs",
      t.connections, connections.refused, t.requests, t.responses, t.bytes_in,
      t.bytes_out, t.reads, t.writes, t.partial_writes, t.syscalls,
      ratio(t.syscalls, t.requests).c_str(), t.waits, ratio(t.requests, t.waits).c_str(),
      t.backpressure_pauses,
      us(t.latency_count() == 0 ? 0 : t.latency_total_ns / t.latency_count()),
      us(t.latency_quantile_ns(0.5)), us(t.latency_quantile_ns(0.99)),
      us(t.latency_quantile_ns(1.0)));
  return text;
}

std::string StatsRegistry::live_line(const ConnectionCounts& connections) {
  const Totals now = totals();
  const ProcessUsage usage = process_usage();
  const ProcessUsage used = usage.since(last_live_usage_);
  const auto at = Clock::now();
  const double seconds = std::max(1e-9, std::chrono::duration<double>(at - last_live_at_).count());
  const uint64_t requests = now.requests - last_live_.requests;
  char text[640];
  std::snprintf(text, sizeof text,
                "%.0f req/s, %.1f MB/s out, %" PRIu64 " connections, %s syscalls/req, "
                "%s req/wait, %" PRIu64 " partial writes, %" PRIu64 " backpressure pauses, "
                "CPU %.0f%% user %.0f%% system, %s voluntary and %s involuntary switches/req",
                static_cast<double>(requests) / seconds,
                static_cast<double>(now.bytes_out - last_live_.bytes_out) / seconds / 1e6,
                connections.active, ratio(now.syscalls - last_live_.syscalls, requests).c_str(),
                ratio(requests, now.waits - last_live_.waits).c_str(),
                now.partial_writes - last_live_.partial_writes,
                now.backpressure_pauses - last_live_.backpressure_pauses,
                static_cast<double>(used.user_us) / 1e4 / seconds,
                static_cast<double>(used.system_us) / 1e4 / seconds,
                ratio(used.voluntary_switches, requests).c_str(),
                ratio(used.involuntary_switches, requests).c_str());
  last_live_ = now;
  last_live_at_ = at;
  last_live_usage_ = usage;
  return text;
}

}  // namespace h2lab::server
