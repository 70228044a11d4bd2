// libFuzzer target: the JSON event decoder (events/decode.h).
//
// Properties beyond "no crash, no leak, no UB": a decoded event re-encodes to
// JSON that decodes to the same content; a refusal names a reason and a
// detail, and its event_id, when reported, is a well-formed id.
#include <cstdlib>
#include <string_view>

#include "events/decode.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view line(reinterpret_cast<const char*>(data), size);
  auto r = fission::DecodeJson(line);
  if (!r.ok()) {
    const auto& e = r.error();
    if (e.reason != "invalid_event" && e.reason != "unknown_type") std::abort();
    if (e.detail.empty()) std::abort();
    if (e.event_id && !fission::IsValidId(*e.event_id, 128)) std::abort();
    if (!fission::IsValidId(e.tenant)) std::abort();
    // The detail is stored and rendered: once made valid UTF-8 it must stay so.
    if (fission::ValidUtf8(fission::ValidUtf8(e.detail)) != fission::ValidUtf8(e.detail)) std::abort();
    return 0;
  }
  const std::string again = fission::EncodeJson(r.value());
  auto back = fission::DecodeJson(again);
  if (!back.ok()) std::abort();
  if (fission::ContentKey(back.value()) != fission::ContentKey(r.value())) std::abort();
  return 0;
}
