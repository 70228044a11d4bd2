// libFuzzer target: Protobuf events as they arrive from Kafka (the parse in
// Processor::OfferProto, then events/decode.h's ValidateEvent).
//
// A validated event must pass validation again unchanged (validation is
// idempotent) and survive the JSON form with the same content.
#include <cstdlib>

#include <google/protobuf/stubs/logging.h>

#include "events/decode.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  // Protobuf logs every string field with invalid UTF-8 it parses; the
  // refusal is what is under test, not the log.
  google::protobuf::SetLogHandler(nullptr);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fission::pb::Event e;
  if (!e.ParseFromArray(data, static_cast<int>(size))) return 0;
  auto r = fission::ValidateEvent(e);
  if (!r.ok()) {
    if (r.error().detail.empty()) std::abort();
    return 0;
  }
  auto twice = fission::ValidateEvent(r.value());
  if (!twice.ok() || fission::ContentKey(twice.value()) != fission::ContentKey(r.value())) std::abort();
  auto json = fission::DecodeJson(fission::EncodeJson(r.value()));
  if (!json.ok() || fission::ContentKey(json.value()) != fission::ContentKey(r.value())) std::abort();
  return 0;
}
