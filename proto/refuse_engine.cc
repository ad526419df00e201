#include "proto/refuse_engine.h"

#include <array>

namespace h2lab::proto {

size_t RefuseEngine::on_input(Bytes in) noexcept {
  if (done_) return in.size();
  // RFC 9113 §3.4, decided octet by octet (proto/preface.h).
  const PrefaceMatcher::Result result = preface_.feed(in).result;
  if (result == PrefaceMatcher::Result::kIncomplete) return in.size();
  done_ = true;
  if (result != PrefaceMatcher::Result::kPreface) {
    close_reason_ = append_preface_refusal(result, out_);
    return in.size();
  }
  const std::array<Setting, 1> settings = {
      Setting{static_cast<uint16_t>(SettingId::kMaxConcurrentStreams), 0}};
  encode_settings(out_.append(kFrameHeaderSize + kSettingEntrySize), settings);
  encode_goaway(out_.append(kFrameHeaderSize + 8 + kDebugData.size()), 0, ErrorCode::kNoError,
                kDebugData);
  counters_.goaway_sent = true;  // NO_ERROR
  return in.size();  // whatever followed the preface is not looked at
}

}  // namespace h2lab::proto
