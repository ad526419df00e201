#include "proto/refuse_engine.h"

#include <array>

namespace h2lab::proto {

size_t RefuseEngine::on_input(Bytes in) noexcept {
  if (done_) return in.size();
  // RFC 9113 §3.4, octet by octet, so that a preface split across reads works.
  for (size_t pos = 0; pos < in.size(); ++pos) {
    if (in[pos] != static_cast<uint8_t>(kClientPreface[preface_matched_])) {
      close_reason_ = "bad connection preface";
      done_ = true;
      return in.size();
    }
    if (++preface_matched_ < kClientPreface.size()) continue;
    const std::array<Setting, 1> settings = {
        Setting{static_cast<uint16_t>(SettingId::kMaxConcurrentStreams), 0}};
    encode_settings(out_.append(kFrameHeaderSize + kSettingEntrySize), settings);
    encode_goaway(out_.append(kFrameHeaderSize + 8 + kDebugData.size()), 0, ErrorCode::kNoError,
                  kDebugData);
    counters_.goaway_sent = true;  // NO_ERROR
    done_ = true;
    return in.size();  // whatever followed the preface is not looked at
  }
  return in.size();
}

}  // namespace h2lab::proto
